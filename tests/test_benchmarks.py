"""The benchmark scripts still run against the library's API (their numbers are checked by `make bench`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
import yaml

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_bench_zoo_projects_a_two_job_zoo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = {
        "world": {"n_concepts": 16, "n_heldout": 2},
        "zoo": {"jobs": 2, "eval_per_concept": 1,
                "train": {"steps": 3, "batch_size": 16, "num_threads": 1},
                "models": [{"name": f"t{i}", "arch": "cliplab-tiny", "corpus_size": 64, "seed": i} for i in range(3)]},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    load("bench_zoo").main(["--params", str(path), "--steps", "2"])
    out = capsys.readouterr().out
    assert "3 models, 2 at once (train+render)" in out and "(projected)" in out
    assert "(worker 0)" in out and "(worker 1)" in out  # list-scheduled onto both workers


def test_bench_sharpness_checks_agreement_and_reports_the_ceiling(capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    try:
        load("bench_sharpness").main(["--repeats", "1", "--d-in", "8", "--width", "8"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert out.count("values agree") == 4  # stacked, vmap and loop agreed (else the script raises) at every (m, K)
    assert out.count("would be at most") == 4 and out.count("tends to") == 4
    assert "worst-case l2 adaptive" in out


def test_bench_limits_counts_training_flops_by_tower() -> None:
    flops = load("bench_limits").training_flops("cliplab-tiny", batch_size=4)
    assert flops["total"] > flops["image_tower"] > 0.5 * flops["total"]  # the ResNet tower dominates this model


def test_bench_table_replaces_only_the_marked_block(tmp_path: Path) -> None:
    run = load("run")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run.BEGIN}\nold table\n{run.END}\noutro\n")
    row = {"script": "zoo", "name": "whole zoo", "measured": 400.0, "target": 360.0, "unit": "s",
           "higher_is_better": False, "how": "projected", "ratio": 0.9}
    assert run.write_readme(run.table([row], "Some CPU, 2 cores", ["bench_zoo.py"], []), readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old table" not in text
    assert "| zoo | whole zoo (*projected*) | 400.00 s | ≤ 360.00 | 0.90× | **no** |" in text
    assert "CPU: Some CPU, 2 cores" in text
    readme.write_text("no markers\n")
    assert not run.write_readme("x", readme) and readme.read_text() == "no markers\n"
