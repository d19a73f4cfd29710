"""Every paper's notebook runs through the real runner at smoke scale, deterministically, writes every
metric its claims.yaml refers to, and matches its golden smoke metrics (lerobot-style regression artifact).

Golden metrics are kept per CPU numeric path. Same code and seed give the same bits on one kind of machine,
but CPUs whose BLAS / oneDNN / vectorised kernels differ (AVX2 vs AVX-512, other MKL code paths) round
differently, and smoke training amplifies one rounding difference into different metrics (seen: a tiny CLIP's
zero-shot accuracy, Kendall τ over a handful of models). So ``tests/golden/cpu-<fingerprint>/`` holds the
metrics recorded on machines with that ``numeric_fingerprint`` (a hash of a few kernels' output bits), and
``tests/golden/cpu-unrecorded/`` the ones recorded before fingerprints were. The test passes when the metrics
match some recorded variant; fails when this machine's own variant exists and they do not match (a regression,
or an unrecorded change of results); and is skipped, saying so, on a CPU with no variant of its own whose
metrics match none (nothing recorded can judge it there).

After an intended change of results, or to record a new kind of machine, refresh this machine's variant with
``CLIPLAB_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_notebooks.py`` and commit it with the change (variants
recorded on other machines then need refreshing there, or removing).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from cliplab.core import paths
from cliplab.core.claims import INCONCLUSIVE, STATUSES, check_claims, evaluate, load_claims
from cliplab.core.fingerprint import numeric_fingerprint
from cliplab.core.runner import papers, run_paper
from cliplab.core.verify import compare

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
GOLDEN_ATOL = 1e-6  # the metrics.json of one machine are bit-identical run to run; this only absorbs JSON rounding


def golden_variants(paper: str) -> dict[str, dict]:
    """Recorded smoke metrics of ``paper``: variant folder name (``cpu-<fingerprint>``) → metrics."""
    return {path.parent.name: json.loads(path.read_text())
            for path in sorted(GOLDEN.glob(f"cpu-*/{paper}.smoke.json"))}


def drift(metrics: dict, expected: dict) -> dict:
    """Metrics whose value differs from ``expected``: key → (ours, recorded)."""
    return {k: (metrics[k], expected[k]) for k in expected
            if not math.isclose(metrics[k], expected[k], rel_tol=0, abs_tol=GOLDEN_ATOL)}


def golden_verdict(paper: str, metrics: dict, variants: dict[str, dict], here: str) -> tuple[str, str]:
    """"pass" when ``metrics`` match some variant; "fail" when this machine's variant (``here``) exists and they
    do not; "skip" when neither, since no recording can judge this CPU. With a message saying which and why."""
    drifts = {name: drift(metrics, expected) for name, expected in variants.items()}
    matched = sorted(name for name, d in drifts.items() if not d)
    if matched:
        return "pass", f"{paper} smoke metrics match golden {matched[0]}"
    if here in drifts:
        return "fail", f"{paper} smoke metrics drifted from this machine's golden ({here}): {drifts[here]}"
    nearest = min(drifts, key=lambda name: len(drifts[name]))
    return "skip", (f"{paper}: no golden smoke metrics recorded for this CPU's numeric path ({here}) and none of "
                    f"{sorted(variants)} matches (nearest {nearest}: {len(drifts[nearest])} metrics differ); record "
                    "this machine's with CLIPLAB_UPDATE_GOLDEN=1 if the code did not change results")


def results_on_any_cpu(paper: str, metrics: dict) -> None:
    """What must hold on every CPU, recorded or not: the verdicts use the scoreboard's vocabulary and are scored
    over the smoke replicates, and the claims that are exact computations (``replicates: {over: none}``) give
    the same metrics as every recorded variant, within the paper's tolerance (``cliplab.core.verify``).
    A claim whose replicate source exists once only (one model pair) may be scored on one value, as inconclusive."""
    claims_file = paths.claims_path(REPO, paper)
    results = check_claims(claims_file, metrics, smoke=True)
    assert {r.status for r in results} <= set(STATUSES), [r.status for r in results]
    for r in results:
        if r.claim.check is not None and r.claim.replicates_over != "none":
            assert r.scored is not None and (r.scored.n >= 2 or r.status == INCONCLUSIVE), \
                f"{paper} {r.claim.id}: a claim scored on fewer than the smoke replicates must read inconclusive"
    exact = {r.claim.id for r in results if r.claim.check is not None and r.claim.replicates_over == "none"}
    for name, recorded in golden_variants(paper).items():
        off = [row for row in compare(claims_file, metrics, recorded, smoke=True)
               if row.claim in exact and row.off_tolerance]
        assert not off, f"{paper}: exact claims differ from golden {name} beyond tolerance: {off}"


@pytest.mark.slow
@pytest.mark.parametrize("paper", papers(REPO))
def test_notebook_smoke_is_deterministic_and_complete(paper: str, tmp_path: Path) -> None:
    first = run_paper(paper, smoke=True, out=tmp_path / "a", root=REPO, progress=False)
    second = run_paper(paper, smoke=True, out=tmp_path / "b", root=REPO, progress=False)
    metrics_a = (first.out_dir / "metrics.json").read_bytes()
    assert metrics_a == (second.out_dir / "metrics.json").read_bytes(), "same seed must give identical metrics"
    assert list((first.out_dir / "figures").glob("*.png")), "a replication shows its results as figures"

    metrics = json.loads(metrics_a)
    _, claims = load_claims(paths.claims_path(REPO, paper))
    for claim in claims:
        missing = sorted(k for k in claim.metric_keys() if k not in metrics)
        assert not missing, f"{paper} {claim.id}: notebook did not write {missing}"
        if claim.check is not None:
            evaluate(claim.check, metrics)  # raises on a malformed check

    here = f"cpu-{numeric_fingerprint()}"
    if os.environ.get("CLIPLAB_UPDATE_GOLDEN") == "1":
        (GOLDEN / here).mkdir(parents=True, exist_ok=True)
        (GOLDEN / here / f"{paper}.smoke.json").write_bytes(metrics_a)
    variants = golden_variants(paper)
    assert variants, f"no golden metrics for {paper}: run with CLIPLAB_UPDATE_GOLDEN=1 and commit {GOLDEN / here}"
    for name, expected in variants.items():  # which metrics exist does not depend on the CPU
        assert sorted(metrics) == sorted(expected), \
            f"the set of {paper} metrics differs from golden {name}; refresh the golden files if intended"
    results_on_any_cpu(paper, metrics)
    verdict, message = golden_verdict(paper, metrics, variants, here)
    if verdict == "skip":
        pytest.skip(message)
    assert verdict == "pass", message


def test_numeric_fingerprint_is_stable_and_tells_thread_counts_apart() -> None:
    first = numeric_fingerprint()
    assert first == numeric_fingerprint() and len(first) == 12 and int(first, 16) >= 0
    previous = torch.get_num_threads()
    torch.set_num_threads(previous + 1)
    try:
        assert numeric_fingerprint() != first  # the count is hashed in: GEMMs split over threads may round apart
    finally:
        torch.set_num_threads(previous)


def test_golden_verdict_passes_on_any_match_fails_on_own_variant_and_skips_unknown_cpus() -> None:
    old, new = {"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.5}
    variants = {"cpu-unrecorded": old, "cpu-0123456789ab": new}
    assert golden_verdict("p", {"a": 1.0, "b": 2.0 + 1e-9}, variants, "cpu-0123456789ab")[0] == "pass"
    assert golden_verdict("p", new, variants, "cpu-ffffffffffff")[0] == "pass"
    verdict, message = golden_verdict("p", {"a": 1.0, "b": 3.0}, variants, "cpu-0123456789ab")
    assert verdict == "fail" and "'b': (3.0, 2.5)" in message
    verdict, message = golden_verdict("p", {"a": 0.0, "b": 2.0}, variants, "cpu-ffffffffffff")
    assert verdict == "skip" and "nearest cpu-unrecorded: 1 metrics differ" in message
