"""Per-world replicate series of the concept-frequency claims, read from the per-model metrics.

The replicate of a zoo claim here is the *world*: ``tiny-s0 … tiny-s4`` are one recipe trained on five worlds,
each with its own concept→frequency permutation. The notebook fits every model once and logs flat per-model
metrics (``fit.<model>.*`` from ``scaling.frequency_report``, ``prompt.<model>.<prompt>.*``,
``ood.<model>.pooled.*``, ``top1.<model>.*``); the functions here turn them into one value per world for each
statistic a check compares (``C1.slope`` → ``[slope of world 0, slope of world 1, …]``), which the notebook logs
with ``Artifacts.log_replicates`` (keys ``C1.slope.r0 …`` plus their mean). Scalars that are shown but not
checked (binned ρ range, multiplier at the mean slope) come from :func:`world_summary`.

- :func:`key` — a model name as a metric-key segment;
- :func:`evaluated_models` — the worlds and the other zoo models, each once, in order;
- :func:`top1_metrics` — clean and held-out-domain top-1 of one model's concept tables;
- :func:`world_series` — C1, C3, C5, C7 statistics, one value per world;
- :func:`variant_series` — C2's bigger-tower and smaller-corpus slopes, one value per world that has the variant;
- :func:`world_summary` — display-only scalars over the worlds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cliplab.frequency.scaling import data_multiplier

PROMPTS = {"ensemble": "accuracy", "classname": "acc_classname", "photo": "acc_photo"}  # C5 key → table column
SERIES_FIELDS = {  # replicate key → per-model metric (``{model}`` is the model's key segment)
    "C1.slope": "fit.{model}.slope",
    "C1.r_log": "fit.{model}.r_log",
    "C1.r_linear": "fit.{model}.r_linear",
    "C1.pearson": "fit.{model}.pearson",
    "C1.spearman": "fit.{model}.spearman",
    "C1.x_decades": "fit.{model}.x_decades",
    "C3.slope_ood": "ood.{model}.pooled.slope",
    "C3.top1_clean": "top1.{model}.clean",
    "C3.top1_ood": "top1.{model}.ood",
    **{f"C5.slope_{name}": f"prompt.{{model}}.{column}.slope" for name, column in PROMPTS.items()},
    "C7.gap": "fit.{model}.gap",
    "C7.standard_acc": "fit.{model}.standard_acc",
    "C7.tail_acc": "fit.{model}.tail_acc",
}


def key(name: str) -> str:
    """A model name as a metric-key segment (tiny-c15k-s0 -> tiny_c15k_s0)."""
    return name.replace("-", "_")


def evaluated_models(worlds: Sequence[str], others: Sequence[str]) -> list[str]:
    """The world models, then the other zoo models, each once (the order the notebook evaluates them in)."""
    if not worlds:
        raise ValueError("at least one world model is needed")
    return list(dict.fromkeys([*worlds, *others]))


def top1_metrics(name: str, clean: pd.DataFrame, ood: pd.DataFrame) -> dict[str, float]:
    """``top1.<model>.clean`` and ``top1.<model>.ood``: mean per-concept accuracy on the clean and held-out tables."""
    return {f"top1.{key(name)}.clean": float(clean["accuracy"].mean()),
            f"top1.{key(name)}.ood": float(ood["accuracy"].mean())}


def _lookup(metrics: Mapping[str, float], template: str, name: str) -> float:
    metric = template.format(model=key(name))
    if metric not in metrics:
        raise KeyError(f"metric '{metric}' of world model {name!r} was not logged (fit every world model first)")
    return float(metrics[metric])


def world_series(metrics: Mapping[str, float], worlds: Sequence[str],
                 domains: Sequence[str] = (), ood: bool = True) -> dict[str, list[float]]:
    """One value per world (in ``worlds`` order) of every statistic the C1, C3, C5 and C7 checks compare.

    Also ``C3.slope_<domain>`` for each held-out domain in ``domains`` (the per-domain slope, shown only).
    ``ood=False`` leaves out C3 (a real-path run without shifted test folders). Raises KeyError naming the
    first per-model metric that is missing.
    """
    if not worlds:
        raise ValueError("at least one world model is needed")
    fields = {**SERIES_FIELDS, **{f"C3.slope_{d}": f"ood.{{model}}.{d}.slope" for d in domains}}
    if not ood:
        fields = {k: v for k, v in fields.items() if not k.startswith("C3.")}
    return {series: [_lookup(metrics, template, n) for n in worlds] for series, template in fields.items()}


def variant_series(metrics: Mapping[str, float], size_models: Sequence[str],
                   corpus_models: Sequence[str]) -> dict[str, list[float]]:
    """C2: the slope of each bigger-tower model and of each smaller-corpus model, one per world that has one.

    ``C2.slope_size`` and ``C2.slope_corpus`` must have as many replicates as each other (one check pairs them).
    """
    if len(size_models) != len(corpus_models) or not size_models:
        raise ValueError(f"C2 needs as many size variants as corpus variants (one per world), got "
                         f"{list(size_models)} and {list(corpus_models)}")
    return {"C2.slope_size": [_lookup(metrics, "fit.{model}.slope", n) for n in size_models],
            "C2.slope_corpus": [_lookup(metrics, "fit.{model}.slope", n) for n in corpus_models]}


def world_summary(metrics: Mapping[str, float], worlds: Sequence[str], models: Sequence[str],
                  n_concepts: int) -> dict[str, float]:
    """Display-only scalars: number of worlds, binned ρ range over ``models`` (where defined), the data multiplier
    per +10 points at the mean world slope (0 when undefined), and chance accuracy (1 / ``n_concepts``)."""
    slopes = [_lookup(metrics, "fit.{model}.slope", n) for n in worlds]
    binned = [float(metrics[f"fit.{key(n)}.binned_rho"]) for n in models if f"fit.{key(n)}.binned_rho" in metrics]
    zero = [float(metrics[f"fit.{key(n)}.zero_acc"]) for n in worlds if f"fit.{key(n)}.zero_acc" in metrics]
    try:
        multiplier = data_multiplier(float(np.mean(slopes)))
    except ValueError:  # no positive mean slope: more data buys no accuracy, no finite multiplier
        multiplier = 0.0
    return {"C1.n_worlds": float(len(worlds)), "C1.chance": 1.0 / n_concepts, "C1.multiplier": multiplier,
            "C1.zero_acc": float(np.mean(zero)) if zero else 0.0,
            "C2.binned_rho_min": min(binned, default=0.0), "C2.binned_rho_max": max(binned, default=0.0)}
