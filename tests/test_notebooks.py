"""Every paper's notebook runs through the real runner at smoke scale, deterministically, and writes
every metric its claims.yaml refers to."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliplab import paths
from cliplab.claims import evaluate, load_claims
from cliplab.runner import papers, run_paper

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("paper", papers(REPO))
def test_notebook_smoke_is_deterministic_and_complete(paper: str, tmp_path: Path) -> None:
    first = run_paper(paper, smoke=True, out=tmp_path / "a", root=REPO, progress=False)
    second = run_paper(paper, smoke=True, out=tmp_path / "b", root=REPO, progress=False)
    metrics_a = (first.out_dir / "metrics.json").read_bytes()
    assert metrics_a == (second.out_dir / "metrics.json").read_bytes(), "same seed must give identical metrics"
    assert list((first.out_dir / "figures").glob("*.png")), "a replication shows its results as figures"

    import json

    metrics = json.loads(metrics_a)
    _, claims = load_claims(paths.claims_path(REPO, paper))
    for claim in claims:
        missing = sorted(k for k in claim.metric_keys() if k not in metrics)
        assert not missing, f"{paper} {claim.id}: notebook did not write {missing}"
        if claim.check is not None:
            evaluate(claim.check, metrics)  # raises on a malformed check
