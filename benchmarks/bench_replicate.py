"""End-to-end replication timings, through DVC, on a temporary copy of the project.

Measures, in one run: the smoke pipeline, the default pipeline (first runs), and a rerun of each with
nothing changed (DVC's no-op), against the issue's targets. Usage: python benchmarks/bench_replicate.py
[--smoke-only]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import BIN, REPO, Result, print_results, timed  # noqa: E402

# Targets from the issues: per-paper default ≤ 3 min / smoke ≤ 30 s; whole pipeline ≤ 20 min / ≤ 3 min.
PAPER_TARGETS = {"shortcut_learning": (180.0, 30.0)}
PIPELINE_DEFAULT_S, PIPELINE_SMOKE_S, NOOP_S = 20 * 60.0, 3 * 60.0, 10.0


def _copy_project(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for rel in files.splitlines():
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([str(BIN / "cliplab"), "sample-data", "data"], cwd=dest, check=True, capture_output=True)


def main(smoke_only: bool = False) -> None:
    dvc = str(BIN / "dvc")
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _copy_project(work)
        scales = [("smoke", "smoke-report", "smoke@", PIPELINE_SMOKE_S, 1)]
        if not smoke_only:
            scales.append(("default", "report", "paper@", PIPELINE_DEFAULT_S, 0))
        for scale, target, prefix, pipeline_target, which in scales:
            total = 0.0
            for paper, targets in PAPER_TARGETS.items():
                seconds = timed([dvc, "repro", "-s", f"{prefix}{paper}"], work)
                total += seconds
                results.append(Result(f"{paper} {scale} (first run)", seconds, targets[which], "s"))
            total += timed([dvc, "repro", target], work)
            results.append(Result(f"whole pipeline {scale} (first run)", total, pipeline_target, "s"))
            results.append(Result(f"whole pipeline {scale} rerun, nothing changed", timed([dvc, "repro", target], work), NOOP_S, "s"))
    print_results("replication timings", results)


if __name__ == "__main__":
    main(smoke_only="--smoke-only" in sys.argv)
