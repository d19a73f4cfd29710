"""The scoreboard: safe check evaluation, loud failures on missing metrics, honest statuses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cliplab.core import claims
from cliplab.core.claims import ClaimsError, check_paper_claims, evaluate, load_claims, write_report
from cliplab.cli import main

M = {"C1.bias_relu": 0.4, "C1.bias_linear": -0.02, "C2.tau": -0.5}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("C1.bias_relu > 0", True), ("abs(C1.bias_linear) < 0.1 and C1.bias_relu > 0.5", False),
     ("C2.tau < 0 or C1.bias_relu < 0", True), ("not C2.tau > 0", True), ("0 < C1.bias_relu < 0.3", False),
     ("max(C1.bias_relu, C2.tau) - 0.4 == 0", True), ("-C2.tau * 2 >= 1", True)],
)
def test_evaluate(expr: str, expected: bool) -> None:
    assert evaluate(expr, M) is expected


@pytest.mark.parametrize(
    "expr", ["__import__('os').system('true')", "C1.bias_relu.__class__", "[1][0] > 0", "open('x')", "C1 ** 2 > 0"]
)
def test_evaluate_refuses_anything_but_arithmetic_and_logic(expr: str) -> None:
    with pytest.raises(ClaimsError):
        evaluate(expr, {**M, "C1": 1.0})


def test_missing_metric_is_an_error_not_a_fail() -> None:
    with pytest.raises(ClaimsError, match="'C9.nope'"):
        evaluate("C9.nope > 0", M)


def test_demo_claims_statuses(demo_project: Path) -> None:
    results = check_paper_claims(demo_project, "demo")
    assert [r.status for r in results] == [claims.NOT_RUN, claims.UNTESTABLE]
    out = demo_project / "replications" / "demo"
    (out / "metrics.json").write_text(json.dumps({"C1.total": 4.5}))
    results = check_paper_claims(demo_project, "demo")
    assert results[0].status == claims.REPLICATES and results[0].ours == "4.50"
    (out / "metrics.json").write_text(json.dumps({"C1.total": 3.0}))
    assert check_paper_claims(demo_project, "demo")[0].status == claims.FAILS


def test_report_fails_loudly_on_a_key_the_notebook_did_not_write(
    demo_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo_project / "replications/demo/metrics.json").write_text(json.dumps({"C1.other": 1.0}))
    assert main(["report"]) == 1
    assert "C1.total" in capsys.readouterr().err
    assert not (demo_project / "replications" / "REPORT.md").exists()


def test_report_table(demo_project: Path) -> None:
    (demo_project / "replications/demo/metrics.json").write_text(json.dumps({"C1.total": 6.0}))
    path, text = write_report(demo_project, ["demo"])
    assert path == demo_project / "replications" / "REPORT.md" and path.read_text() == text
    assert ("| Demo paper | **C1** The total exceeds four. | > 4 | 6.00 | none (needs 1) | C1.total = +6 > 4 ✓ | 1/1 "
            "| replicates |") in text
    assert "| Demo paper | 1 | 0 | 0 | 0 | 1 |" in text
    assert claims.RULE in text


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [("paper: x\nclaims: []\n", "non-empty 'claims:'"),
     ("claims:\n  - {id: C1, claim: a, paper_value: b}\n", "has no check"),
     ("claims:\n  - {id: C1, claim: a, paper_value: b, check: 'x >'}\n", "not valid"),
     ("claims:\n  - {id: C1, claim: a, check: 'x > 1'}\n", "lacks paper_value"),
     ("claims:\n  - {id: C1, claim: a, paper_value: b, untestable: u}\n  - {id: C1, claim: a, paper_value: b, untestable: u}\n",
      "appears twice"),
     ("claims:\n  - {id: C1, claim: a, paper_value: b, check: 'x>1', frozen: {date: d, sha256: ca850e3911b0d6d3}}\n",
      "lacks 'replicates:"),
     ("claims:\n  - {id: C1, claim: a, paper_value: b, check: 'x>1', replicates: {over: seed}}\n", "is not frozen"),
     ("claims:\n  - {id: C1, claim: a, paper_value: b, check: 'x>2', replicates: {over: seed},"
      " frozen: {date: d, sha256: ca850e3911b0d6d3}}\n", "changed since it was frozen on d"),
     ("claims:\n  - {id: C1, claim: a, paper_value: b, check: 'x>1', replicates: {over: none, min: 3},"
      " frozen: {date: d, sha256: ca850e3911b0d6d3}}\n", "min must be 1"),
     ("claims:\n  - {id: C1, claim: a, paper_value: b, check: 'x>1', replicates: {over: seed},"
      " frozen: {date: d, sha256: ca850e3911b0d6d3}, revised: [{date: d, reason: r}]}\n", "without before")],
)
def test_malformed_claims_files(tmp_path: Path, yaml_text: str, needle: str) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ClaimsError, match=needle):
        load_claims(path)


def test_every_committed_claims_file_is_valid() -> None:
    repo = Path(__file__).resolve().parents[1]
    files = sorted((repo / "replications").glob("*/claims.yaml"))
    assert files, "no claims.yaml found"
    for path in files:
        _, entries = load_claims(path)
        natural = [[int(t) if t.isdigit() else t for t in re.split(r"(\d+)", c.id)] for c in entries]
        assert natural == sorted(natural), [c.id for c in entries]  # C2 before C10, A-C3b between A-C3 and A-C4
        for c in entries:
            assert c.check is not None or c.untestable, c.id
