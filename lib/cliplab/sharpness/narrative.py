"""The notebook's "how to read the verdicts" text, rendered from this run's metrics and verdicts.

Why: prose typed into Markdown states one machine's numbers and goes stale on the next machine or seed. These
functions read the numbers from the ``metrics.json`` keys the notebook logged (``A.*`` for sharpness vs
generalisation, ``B.*`` for sharpness along the CLIP interpolation) and pick the sentence that fits them, so
the text above a run's output always agrees with it. Metrics measured over replicates (``KEY.r0`` …, ``KEY`` =
the mean) are read per replicate, so the text says how many zoos / seeds / data draws agree, not only the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cliplab.core.claims import ClaimResult, status_of


def factor_taus(metrics: Mapping[str, float], target: str = "test_error") -> dict[str, float]:
    """τ(headline sharpness, ``target``) within single-factor groups (``A.factor.<target>.<factor>`` keys).

    The ``all`` entry (the whole population, not one factor) is left out.
    """
    prefix = f"A.factor.{target}."
    return {k.removeprefix(prefix): v for k, v in sorted(metrics.items())
            if k.startswith(prefix) and k != f"{prefix}all"}


def keep_gains(metrics: Mapping[str, float]) -> dict[int, float]:
    """Interior OOD gain of each sparse straggler path over its own ends, by kept percent (``B.C3.gain_keep*``,
    the mean over seeds; the per-seed ``.r<i>`` entries are left out)."""
    prefix = "B.C3.gain_keep"
    return dict(sorted((int(k.removeprefix(prefix)), v) for k, v in metrics.items()
                       if k.startswith(prefix) and "." not in k.removeprefix(prefix)))


def replicate_values(metrics: Mapping[str, float], key: str) -> list[float]:
    """The per-replicate values ``key.r0, key.r1, …`` of a metric (``[metrics[key]]`` when it has none)."""
    values, i = [], 0
    while f"{key}.r{i}" in metrics:
        values.append(float(metrics[f"{key}.r{i}"]))
        i += 1
    return values or [float(metrics[key])]


def _spread(values: Sequence[float], unit: str, fmt: str = "+.2f") -> str:
    """'3 zoos: −0.10 … +0.20' — how many replicates and their range."""
    return f"{len(values)} {unit}: {min(values):{fmt}} … {max(values):{fmt}}"


def _signs(taus: Mapping[str, float]) -> str:
    listed = ", ".join(f"{f.replace('_', ' ')} {t:+.2f}" for f, t in taus.items())
    both = min(taus.values()) < 0 < max(taus.values())
    return f"{'takes both signs' if both else 'keeps one sign'} ({listed})"


def _count(values: Sequence[float], test: object, unit: str) -> str:
    """'all 5 zoos' or '3 of 5 zoos': how many replicates pass ``test``."""
    hits = sum(bool(test(v)) for v in values)  # type: ignore[operator]
    return f"{'all' if hits == len(values) else f'{hits} of'} {len(values)} {unit}"


def a_c1_reading(metrics: Mapping[str, float], status: str) -> str:
    """A-C1: τ with test error vs τ with the learning rate, per zoo; the underfit zoo; per-factor signs."""
    test, lr = replicate_values(metrics, "A.C1.tau_test_error"), replicate_values(metrics, "A.C1.tau_lr")
    weak = _count(test, lambda t: -0.3 < t < 0.3, "zoos")
    stronger = sum(abs(a) > abs(b) for a, b in zip(lr, test))
    halves = (f"|τ| with the learning rate (mean {metrics['A.C1.tau_lr']:+.2f}) is the stronger in "
              f"{stronger} of {len(lr)} zoos" + (", as the claim says" if stronger == len(lr) else
                                                  "; where it is not, the \"correlates with training parameters "
                                                  "such as the learning rate\" half fails for this definition"))
    median = sum(a > b for a, b in zip(replicate_values(metrics, "A.C1.median_abs_tau_lr"),
                                       replicate_values(metrics, "A.C1.median_abs_tau_test_error")))
    factors = factor_taus(metrics)
    within = f" Within single factors τ(sharpness, test error), averaged over zoos, {_signs(factors)}." if factors else ""
    return (f"**A-C1 ({status}).** The headline definition's τ with test error is {metrics['A.C1.tau_test_error']:+.2f} "
            f"on average ({_spread(test, 'zoos')}); it is weak (within ±0.3) in {weak}; {halves}; the median |τ| "
            f"over the 16 definitions ranks the learning rate above test error in {median} of {len(test)} zoos. "
            f"Mean train error of the zoos is {metrics['A.zoo.mean_train_error']:.2f}.{within}")


def a_c2_reading(metrics: Mapping[str, float], status: str) -> str:
    """A-C2: τ(sharpness, OOD error) per zoo, how many zoos give τ < 0, and how many definitions share its sign."""
    tau = replicate_values(metrics, "A.C2.tau_ood_error")
    return (f"**A-C2 ({status}).** τ(sharpness, OOD error) is {metrics['A.C2.tau_ood_error']:+.2f} on average over "
            f"zoos of {metrics['A.zoo.n_models']:.0f} models ({_spread(tau, 'zoos')}); it is negative in "
            f"{_count(tau, lambda t: t < 0, 'zoos')}. On average {metrics['A.C2.frac_defs_negative_ood']:.0%} of "
            f"the 16 definitions give τ < 0. The zoos' mean OOD error is {metrics['A.zoo.mean_ood_error']:.2f}.")


def a_c3_reading(metrics: Mapping[str, float], status: str) -> str:
    """A-C3: τ(adaptive worst-case sharpness, gap) of the diagonal nets per data draw."""
    tau = replicate_values(metrics, "A.C3.tau_worst_l2_adaptive_gap")
    return (f"**A-C3 ({status}).** In the diagonal networks τ(adaptive worst-case sharpness, gap) is "
            f"{metrics['A.C3.tau_worst_l2_adaptive_gap']:+.2f} on average ({_spread(tau, 'data draws')}), negative "
            f"in {_count(tau, lambda t: t < 0, 'draws')}; standard worst-case gives "
            f"{metrics['A.C3.tau_worst_l2_standard_gap']:+.2f} and average-case adaptive "
            f"{metrics['A.C3.tau_average_l2_adaptive_gap']:+.2f}; {metrics['A.C3.frac_converged']:.0%} of the "
            f"networks reached the target training loss.")


def b_endpoints_reading(metrics: Mapping[str, float], status: str) -> str:
    """B-W1: whether the zero-shot endpoint is the robust one, and the best interior gain, per seed."""
    zs, ft = metrics["B.W1.ood_acc_zero_shot"], metrics["B.W1.ood_acc_finetuned"]
    premise = ("the zero-shot endpoint is the more robust one, as WiSE-FT assumes" if zs > ft else
               "the zero-shot endpoint is *less* robust than the fine-tuned one, so WiSE-FT's premise — a robust "
               "zero-shot endpoint — does not hold")
    gains = replicate_values(metrics, "B.W1.ood_interior_gain")
    return (f"**B-W1 ({status}).** The zero-shot model's mean OOD accuracy is {zs:.3f} against the fine-tuned "
            f"model's {ft:.3f} (means over seeds): {premise}. The best interior α's OOD gain over the better "
            f"endpoint is {metrics['B.W1.ood_interior_gain']:+.4f} on average ({_spread(gains, 'seeds', '+.4f')}); an "
            f"interior α beats both ends in {_count(gains, lambda g: g > 0, 'seeds')}.")


def b_c1_c2_reading(metrics: Mapping[str, float], statuses: Mapping[str, str]) -> str:
    """B-C1, B-C2: whole-model τ with OOD accuracy per seed; the stragglers' signed τ against the other layers'."""
    full = replicate_values(metrics, "B.C1.tau_full")
    both = min(full) <= -0.5 and max(full) >= 0.5
    weak = _count(full, lambda t: -0.5 < t < 0.5, "seeds")
    whole = ("strong τ of *opposite signs* on different seeds, so the seeds disagree rather than show no "
             "correlation" if both else f"a weak τ (within ±0.5) on {weak}")
    strag, other = replicate_values(metrics, "B.C2.tau_straggler"), replicate_values(metrics, "B.C2.tau_other")
    tracks = _count(strag, lambda t: t <= -0.5, "seeds")
    better = sum(a < b for a, b in zip(strag, other))
    return (f"**B-C1 ({statuses['B-C1']}) / B-C2 ({statuses['B-C2']}).** Whole-model adaptive worst-case "
            f"sharpness has τ {metrics['B.C1.tau_full']:+.2f} with OOD accuracy on average "
            f"({_spread(full, 'seeds')}; average-case {metrics['B.C1.tau_full_average_l2']:+.2f}): {whole}. The "
            f"straggler layers' mean signed τ is {metrics['B.C2.tau_straggler']:+.2f} "
            f"({_spread(strag, 'seeds')}), ≤ −0.5 (flatter straggler, higher OOD accuracy) on {tracks}; the "
            f"other layer groups average {metrics['B.C2.tau_other']:+.2f}, and the stragglers' τ is the lower on "
            f"{better} of {len(strag)} seeds. The straggler layers' mean |τ| is "
            f"{metrics['B.C2.abs_tau_straggler']:.2f}; the best single layer has |τ| "
            f"{metrics['B.C2.max_abs_tau_layer']:.2f}.")


def b_c3_reading(metrics: Mapping[str, float], status: str) -> str:
    """B-C3: the dense path's interior gain and what keeping part of the straggler task vector does, per seed."""
    keep = metrics["B.C3.claim_keep"]
    over = replicate_values(metrics, "B.C3.sparse_gain_over_dense_ends")
    dense = replicate_values(metrics, "B.C3.gain_dense")
    own = ", ".join(f"{k} % {g:+.4f}" for k, g in keep_gains(metrics).items())
    return (f"**B-C3 ({status}).** The dense path is in the failure mode (no interior gain) on "
            f"{_count(dense, lambda g: g <= 0, 'seeds')} (mean gain {metrics['B.C3.gain_dense']:+.4f}). Keeping "
            f"{keep:.0%} of the straggler task vector, the best OOD accuracy on the path is on average "
            f"{metrics['B.C3.best_ood_sparse']:.3f} against the dense path's {metrics['B.C3.best_ood_dense']:.3f}; it "
            f"beats the better dense endpoint (mitigation) on {_count(over, lambda g: g > 0, 'seeds')} (mean "
            f"{metrics['B.C3.sparse_gain_over_dense_ends']:+.4f}). Mean interior gain of each sparse path over its "
            f"*own* ends: {own}.")


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult]) -> str:
    """The whole "how to read the verdicts" list (Markdown) of this run."""
    statuses = {c: status_of(verdicts, c) for c in ("A-C1", "A-C2", "A-C3", "B-W1", "B-C1", "B-C2", "B-C3")}
    parts = [a_c1_reading(metrics, statuses["A-C1"]), a_c2_reading(metrics, statuses["A-C2"]),
             a_c3_reading(metrics, statuses["A-C3"]), b_endpoints_reading(metrics, statuses["B-W1"]), b_c1_c2_reading(metrics, statuses),
             b_c3_reading(metrics, statuses["B-C3"])]
    return "\n".join(f"* {p}" for p in parts)
