"""The notebook's "how to read the verdicts" text, rendered from this run's metrics and verdicts.

Why: prose typed into Markdown states one machine's numbers and goes stale on the next machine or seed. These
functions read the numbers from the ``metrics.json`` keys the notebook logged (``A.*`` for sharpness vs
generalisation, ``B.*`` for sharpness along the CLIP interpolation) and pick the sentence that fits them, so
the text above a run's output always agrees with it.
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
    """Interior OOD gain of each sparse straggler path over its own ends, by kept percent (``B.C3.gain_keep*``)."""
    prefix = "B.C3.gain_keep"
    return dict(sorted((int(k.removeprefix(prefix)), v) for k, v in metrics.items() if k.startswith(prefix)))


def _signs(taus: Mapping[str, float]) -> str:
    listed = ", ".join(f"{f.replace('_', ' ')} {t:+.2f}" for f, t in taus.items())
    both = min(taus.values()) < 0 < max(taus.values())
    return f"{'takes both signs' if both else 'keeps one sign'} ({listed})"


def a_c1_reading(metrics: Mapping[str, float], status: str) -> str:
    """A-C1: τ with test error vs τ with the learning rate; the underfit zoo; per-factor signs."""
    test, lr = metrics["A.C1.tau_test_error"], metrics["A.C1.tau_lr"]
    halves = (f"its τ with the learning rate ({lr:+.2f}) is stronger, as the claim says" if abs(lr) > abs(test)
              else f"its τ with the learning rate ({lr:+.2f}) is weaker still, so the \"correlates with training "
              "parameters such as the learning rate\" half fails for this definition")
    median = ("ranks the learning rate above test error" if metrics["A.C1.median_abs_tau_lr"] >
              metrics["A.C1.median_abs_tau_test_error"] else "does not rank the learning rate above test error")
    factors = factor_taus(metrics)
    within = f" Within single factors τ(sharpness, test error) {_signs(factors)}." if factors else ""
    return (f"**A-C1 ({status}).** The headline definition's τ with test error is {test:+.2f} "
            f"({'weak, as the claim says' if abs(test) < 0.3 else 'not weak'}); {halves}; the "
            f"median over the 16 definitions {median}. Mean train error of the zoo is "
            f"{metrics['A.zoo.mean_train_error']:.2f}.{within}")


def a_c2_reading(metrics: Mapping[str, float], status: str) -> str:
    """A-C2: τ(sharpness, OOD error), its CI, and how many definitions share its sign."""
    tau, lo, hi = (metrics[f"A.C2.tau_ood_error{s}"] for s in ("", "_ci_low", "_ci_high"))
    ci = "excludes 0" if hi < 0 or lo > 0 else "includes 0"
    return (f"**A-C2 ({status}).** τ(sharpness, OOD error) is {tau:+.2f} [{lo:+.2f}, {hi:+.2f}] over "
            f"{metrics['A.zoo.n_models']:.0f} models (its CI {ci}); {metrics['A.C2.frac_defs_negative_ood']:.0%} of "
            f"the 16 definitions give τ < 0. The zoo's mean OOD error is {metrics['A.zoo.mean_ood_error']:.2f}.")


def b_endpoints_reading(metrics: Mapping[str, float], status: str) -> str:
    """B-W1: whether the zero-shot endpoint is the robust one, and the best interior gain."""
    zs, ft = metrics["B.W1.ood_acc_zero_shot"], metrics["B.W1.ood_acc_finetuned"]
    premise = ("the zero-shot endpoint is the more robust one, as WiSE-FT assumes" if zs > ft else
               "the zero-shot endpoint is *less* robust than the fine-tuned one, so WiSE-FT's premise — a robust zero-shot endpoint — does "
               "not hold")
    gain = metrics["B.W1.ood_interior_gain"]
    return (f"**B-W1 ({status}).** The zero-shot model's mean OOD accuracy is {zs:.3f} against the fine-tuned "
            f"model's {ft:.3f}: {premise}. The best interior α's OOD gain over the better endpoint is {gain:+.4f}"
            f" ({'an interior α beats both ends' if gain > 0 else 'no interior α beats the better end'}).")


def b_c1_c2_reading(metrics: Mapping[str, float], statuses: Mapping[str, str]) -> str:
    """B-C1, B-C2: whole-model τ with OOD accuracy per seed vs the stragglers' mean |τ|."""
    full, stragglers = metrics["B.C1.abs_tau_full"], metrics["B.C2.abs_tau_straggler"]
    tracks = ("tracks OOD accuracy, so C1's \"not a reliable predictor\" fails" if full >= 0.5 else
              "does not track OOD accuracy reliably, as C1 says")
    contrast = ("more than the whole model's" if stragglers > full else "not more than the whole model's")
    return (f"**B-C1 ({statuses['B-C1']}) / B-C2 ({statuses['B-C2']}).** Whole-model adaptive worst-case "
            f"sharpness has τ {metrics['B.C1.tau_full']:+.2f} with OOD accuracy (seeds "
            f"{metrics['B.C1.tau_full_min']:+.2f} … {metrics['B.C1.tau_full_max']:+.2f}; average-case "
            f"{metrics['B.C1.tau_full_average_l2']:+.2f}): on this path it {tracks}. The straggler layers' mean "
            f"|τ| is {stragglers:.2f} (seeds {metrics['B.C2.abs_tau_straggler_min']:.2f} … "
            f"{metrics['B.C2.abs_tau_straggler_max']:.2f}), {contrast} {full:.2f}; the best single layer has |τ| "
            f"{metrics['B.C2.max_abs_tau_layer']:.2f}.")


def b_c3_reading(metrics: Mapping[str, float], status: str) -> str:
    """B-C3: the dense path's interior gain and what keeping part of the straggler task vector does."""
    keep = metrics["B.C3.claim_keep"]
    over = metrics["B.C3.sparse_gain_over_dense_ends"]
    own = ", ".join(f"{k} % {g:+.4f}" for k, g in keep_gains(metrics).items())
    return (f"**B-C3 ({status}).** The dense path's interior gain is {metrics['B.C3.gain_dense']:+.4f}. Keeping "
            f"{keep:.0%} of the straggler task vector, the best OOD accuracy on its path is "
            f"{metrics['B.C3.best_ood_sparse']:.3f} against the dense path's best {metrics['B.C3.best_ood_dense']:.3f}"
            f" ({over:+.4f} over the better dense endpoint: "
            f"{'mitigation' if over > 0 else 'no mitigation'}). Interior gain of each sparse path over its *own* "
            f"ends: {own}.")


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult]) -> str:
    """The whole "how to read the verdicts" list (Markdown) of this run."""
    statuses = {c: status_of(verdicts, c) for c in ("A-C1", "A-C2", "B-W1", "B-C1", "B-C2", "B-C3")}
    parts = [a_c1_reading(metrics, statuses["A-C1"]), a_c2_reading(metrics, statuses["A-C2"]),
             b_endpoints_reading(metrics, statuses["B-W1"]), b_c1_c2_reading(metrics, statuses),
             b_c3_reading(metrics, statuses["B-C3"])]
    return "\n".join(f"* {p}" for p in parts)
