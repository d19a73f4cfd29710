"""Every paper's notebook runs through the real runner at smoke scale, deterministically, writes every
metric its claims.yaml refers to, and matches its golden smoke metrics (lerobot-style regression artifact).

After an intended change of results, refresh the golden files with
``CLIPLAB_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_notebooks.py`` and commit them with the change.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from cliplab import paths
from cliplab.claims import evaluate, load_claims
from cliplab.runner import papers, run_paper

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
# Same code and seed give bit-identical metrics on one machine; across CPUs, BLAS kernels may differ slightly.
GOLDEN_ATOL = 1e-6


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

    golden = GOLDEN / f"{paper}.smoke.json"
    if os.environ.get("CLIPLAB_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(metrics_a)
    assert golden.is_file(), f"no golden metrics for {paper}: run with CLIPLAB_UPDATE_GOLDEN=1 and commit {golden}"
    expected = json.loads(golden.read_text())
    assert sorted(metrics) == sorted(expected), "the set of metrics changed; refresh the golden file if intended"
    drifted = {k: (metrics[k], expected[k]) for k in expected
               if not math.isclose(metrics[k], expected[k], rel_tol=0, abs_tol=GOLDEN_ATOL)}
    assert not drifted, f"{paper} smoke metrics drifted from {golden.name}: {drifted}"
