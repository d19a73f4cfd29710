"""The runner's contract: validate first, publish atomically, fail with one clear message."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cliplab.cli import main
from cliplab.core.runner import run_paper


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _run(*argv: str) -> int:
    return main(["run", "demo", *argv])


def test_success_publishes_outputs(demo_project: Path) -> None:
    assert _run("--set", "scale=2") == 0
    out = demo_project / "replications" / "demo"
    assert json.loads((out / "metrics.json").read_text()) == {"C1.n": 3.0, "C1.total": 6.0}
    assert (out / "figures" / "line.png").stat().st_size > 0
    assert json.loads((out / "params.json").read_text())["scale"] == 2.0
    executed = json.loads((out / "executed.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    assert not list((demo_project / ".cliplab" / "staging").iterdir())


def test_params_yaml_block_is_applied(demo_project: Path) -> None:
    (demo_project / "params.yaml").write_text("papers: [demo]\ndemo:\n  n: 4\n")
    assert _run() == 0
    assert json.loads((demo_project / "replications/demo/metrics.json").read_text())["C1.n"] == 4.0


def test_smoke_outputs_go_to_their_own_tree(demo_project: Path) -> None:
    assert _run("--smoke") == 0
    assert (demo_project / "replications/smoke/demo/metrics.json").is_file()
    assert not (demo_project / "replications/demo/metrics.json").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["--set", "nn=3"], "unknown parameter 'nn'"), (["--set", "n=three"], "parameter 'n' expects int"),
     (["--set", "out_dir=x"], "set by the runner"), (["--timeout", "-1"], "--timeout must be a positive number")],
)
def test_bad_input_exits_2_and_touches_nothing(
    demo_project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert _run() == 0
    before = _snapshot(demo_project)
    capsys.readouterr()
    assert _run(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert _snapshot(demo_project) == before


def test_unknown_paper_exits_2(demo_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "nope"]) == 2
    assert "unknown paper 'nope'. Known papers: demo" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["--set", "fail=true"], "raised ValueError: deliberate failure"),
     (["--set", "sleep_s=30", "--timeout", "2"], "ran past the timeout"),
     (["--set", "die=true"], "kernel died")],
)
def test_failed_run_keeps_previous_outputs(
    demo_project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert _run() == 0
    out = demo_project / "replications" / "demo"
    before = _snapshot(out)
    capsys.readouterr()
    assert _run(*argv) == 1
    messages = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("cliplab:")]
    assert len(messages) == 1, messages
    assert needle in messages[0]
    assert _snapshot(out) == before
    kept = list((demo_project / ".cliplab" / "failed").glob("demo-*.ipynb"))
    assert kept and str(kept[0]) in messages[0]


def test_list_shows_parameters_and_claims(demo_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["paper"] == "demo"
    assert {"name": "n", "type": "int", "default": 3, "help": "how many numbers"} in entry["parameters"]
    assert [c["id"] for c in entry["claims"]] == ["C1", "C2"]


def test_params_json_records_the_values_a_smoke_branch_used(demo_project: Path) -> None:
    nb = demo_project / "notebooks" / "demo.py"
    nb.write_text(nb.read_text().replace("# %%\nimport os, time", "# %%\nif smoke:\n    n = 5\n\n# %%\nimport os, time", 1))
    out = run_paper("demo", smoke=True, root=demo_project)
    recorded = json.loads((out.out_dir / "params.json").read_text())
    assert recorded["n"] == 5 and recorded["smoke"] is True  # what ran, not the default 3
    assert recorded.get("out_dir", "") == ""  # not the run's staging folder: params.json is the same every run
    assert not (out.out_dir / "params_used.json").exists()
