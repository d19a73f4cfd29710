"""End-to-end timings of the replication pipeline, on a temporary copy of the project, against issue 26's targets.

    .venv/bin/python benchmarks/bench_replicate.py [--smoke-only] [--first-run] [--zoo-steps 100]

Measured in one run, on this CPU:
- ``cliplab --help`` (≤ 0.5 s);
- the smoke pipeline's first run and each smoke paper (shortcut_learning ≤ 30 s, whole pipeline ≤ 3 min);
- each paper's default run (≤ 3 min each), on the copy with the project's trained zoo (``zoo/``) copied in, and
  the same paper with one replicate instead of its default replicates (issue 22's added cost: the difference);
- ``make replicate`` with nothing changed (≤ 3 s), once with DVC's file-hash state cold (right after copying
  the outputs in) and once warm;
- the first ``make replicate`` from a fresh clone (≤ 12 min). By default COMPOSED from measured parts — a fresh
  ``make setup``, the zoo's projected time (``bench_zoo.projection``: measured step times, optimistic by about
  15 %), the four papers and the report as measured here; ``--first-run`` measures it for real instead (a fresh
  clone, a fresh virtual environment and ``make replicate``, about an hour at today's recipe).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_zoo import projection  # noqa: E402
from common import BIN, REPO, Result, env_with_venv, print_results, timed  # noqa: E402

from cliplab.zoo import read_params, read_zoo, zoo_jobs  # noqa: E402

PAPER_S, PAPER_SMOKE_S = 180.0, {"shortcut_learning": 30.0}
PIPELINE_SMOKE_S, FIRST_RUN_S, NOOP_S, HELP_S = 3 * 60.0, 12 * 60.0, 3.0, 0.5
# One replicate per paper instead of the default ones: the baseline of the replicates' added cost.
ONE_REPLICATE = {
    "shortcut_learning": ["seeds=1", "image_seeds=1"],
    "concept_frequency": ['seed_models=["tiny-s0"]'],
    "sharpness": ["zoo_replicates=1", "diag_replicates=1", "ft_seeds=[0]"],
    "concept_association_bias": ['models=["tiny-s0"]', "vqa_seeds=[0]"],
}


def copy_project(dest: Path, with_outputs: bool) -> None:
    """The committed files of the project (its working-tree versions), the sample data and the shared .venv.

    With ``with_outputs``, also the trained zoo and the default replications, so DVC sees what the project sees.
    """
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for rel in files.splitlines():
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    if with_outputs:
        for folder in ("zoo", "replications"):
            shutil.copytree(REPO / folder, dest / folder, dirs_exist_ok=True)
    (dest / ".venv").symlink_to(REPO / ".venv")
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([str(BIN / "cliplab"), "sample-data", "data"], cwd=dest, check=True, capture_output=True)
    (dest / ".cliplab").mkdir(exist_ok=True)
    (dest / ".cliplab" / "data.stamp").touch()  # what `make data` leaves: data/ is there


def stale_stages(work: Path) -> list[str]:
    """Stages `dvc repro report` would run in ``work`` (data.dvc's 'not in cache' is no stage and is ignored)."""
    proc = subprocess.run([str(BIN / "dvc"), "status", "report", "--with-deps", "--json"], cwd=work,
                          env=env_with_venv(), capture_output=True, text=True, check=True)
    return sorted(k for k in json.loads(proc.stdout or "{}") if not k.endswith(".dvc"))


def help_seconds(repeats: int = 5) -> float:
    """Median wall time of ``cliplab --help``."""
    return statistics.median(timed([str(BIN / "cliplab"), "--help"], REPO) for _ in range(repeats))


def setup_seconds() -> tuple[float, float]:
    """A fresh ``make setup`` (new virtual environment, the pinned stack; uv's download cache kept): seconds, GB."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("Makefile", "pyproject.toml", "requirements.lock", "README.md"):
            shutil.copy2(REPO / name, Path(tmp) / name)
        shutil.copytree(REPO / "lib", Path(tmp) / "lib")
        seconds = timed(["make", "setup"], Path(tmp))
        size = subprocess.run(["du", "-sb", str(Path(tmp) / ".venv")], capture_output=True, text=True, check=True)
        return seconds, int(size.stdout.split()[0]) / 1e9


def paper_runs(work: Path, papers: list[str]) -> tuple[list[Result], float]:
    """Each paper's default stage (forced) and its one-replicate run; returns the results and their total."""
    dvc, cliplab = str(BIN / "dvc"), str(BIN / "cliplab")
    results, total = [], 0.0
    for paper in papers:
        seconds = timed([dvc, "repro", "-f", "-s", paper], work)
        total += seconds
        results.append(Result(f"{paper} default (first run)", seconds, PAPER_S, "s"))
        sets = [arg for item in ONE_REPLICATE[paper] for arg in ("--set", item)]
        try:
            one = timed([cliplab, "run", paper, *sets, "--out", str(work / ".cliplab" / "one" / paper)], work)
        except RuntimeError as err:
            print(f"{paper} with one replicate failed, so no added cost: {str(err)[-300:]}")
            continue
        print(f"{paper}: {seconds:.0f} s with its replicates, {one:.0f} s with one: replicates add {seconds - one:.0f} s "
              f"(×{seconds / one:.1f})", flush=True)
        results.append(Result(f"{paper} added cost of the replicates", seconds - one, 0.0, "s", how="reported"))
    return results, total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke-only", action="store_true", help="only --help and the smoke pipeline")
    parser.add_argument("--first-run", action="store_true", help="measure a fresh clone's make replicate for real")
    parser.add_argument("--zoo-steps", type=int, default=100, help="timed steps per architecture (zoo projection)")
    args = parser.parse_args(argv)
    dvc = str(BIN / "dvc")
    results = [Result("cliplab --help", help_seconds(), HELP_S, "s")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "smoke"
        work.mkdir()
        copy_project(work, with_outputs=False)
        total = 0.0
        for paper, target in PAPER_SMOKE_S.items():
            seconds = timed([dvc, "repro", "-s", f"smoke-{paper}"], work)
            total += seconds
            results.append(Result(f"{paper} smoke (first run)", seconds, target, "s"))
        total += timed([dvc, "repro", "smoke-report"], work)
        results.append(Result("whole pipeline smoke (first run)", total, PIPELINE_SMOKE_S, "s"))
    if not args.smoke_only and not os.environ.get("CLIPLAB_BENCH_QUICK"):
        results += default_scale(args)
    print_results("replication timings", results)


def default_scale(args: argparse.Namespace) -> list[Result]:
    """Every default-scale target: rerun with nothing changed, the papers, the first run (composed or real)."""
    params = read_params(REPO / "params.yaml")
    entries = read_zoo(params)
    missing = [e.name for e in entries if not (REPO / "zoo" / e.name / "card.json").is_file()]
    if missing:
        print(f"default timings skipped: the project's zoo lacks {', '.join(missing)} (`dvc repro zoo` first)")
        return []
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work, with_outputs=True)
        make = ["make", "-s", "replicate"]
        stale = stale_stages(work)
        if stale:
            print(f"default timings skipped: the project's results are stale ({', '.join(stale)}); rerun them first")
            return []
        results.append(Result("make replicate, nothing changed (cold DVC state)", timed(make, work), NOOP_S, "s"))
        results.append(Result("make replicate, nothing changed", timed(make, work), NOOP_S, "s"))
        runs, papers_s = paper_runs(work, params["papers"])
        results += runs
        report_s = timed([str(BIN / "dvc"), "repro", "-f", "-s", "report"], work)
    if args.first_run:
        with tempfile.TemporaryDirectory() as tmp:
            clone = Path(tmp) / "clone"
            tic = time.perf_counter()
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            proc = subprocess.run(["make", "replicate"], cwd=clone, env=env_with_venv(), capture_output=True, text=True)
            seconds = time.perf_counter() - tic
            if proc.returncode != 0:
                raise RuntimeError(f"make replicate failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        results.append(Result("first make replicate from a fresh clone", seconds, FIRST_RUN_S, "s"))
        return results
    setup_s, venv_gb = setup_seconds()
    results.append(Result("make setup, fresh environment", setup_s, 0.0, "s", how="reported"))
    results.append(Result("disk use of the environment, .venv", venv_gb, 0.0, "GB", how="reported"))
    zoo = projection(entries, params.get("world") or {}, zoo_jobs(params), args.zoo_steps)
    zoo_s = zoo[-1].measured
    parts = {"setup": setup_s, "zoo (projected)": zoo_s, "papers": papers_s, "report": report_s}
    print("first make replicate = " + " + ".join(f"{k} {v:.0f} s" for k, v in parts.items()))
    results += zoo[-1:]
    results.append(Result("first make replicate from a fresh clone", sum(parts.values()), FIRST_RUN_S, "s",
                          how="composed"))
    (REPO / ".cliplab").mkdir(exist_ok=True)
    (REPO / ".cliplab" / "first_run_parts.json").write_text(json.dumps(parts, indent=1))
    return results


if __name__ == "__main__":
    main()
