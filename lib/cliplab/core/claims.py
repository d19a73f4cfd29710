"""The claims scoreboard: each paper's claims.yaml checked against the metrics.json its notebook wrote.

A check is a small boolean expression over metric keys (``C1.bias_relu_ci_low > 0``). It is evaluated by a
whitelisting interpreter, never by ``eval``; a key the notebook did not write is an error, not a silent fail.
"""

from __future__ import annotations

import ast
import json
import operator
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cliplab.core import paths

if TYPE_CHECKING:
    import pandas as pd

REPLICATES, FAILS, NOT_RUN, UNTESTABLE = "replicates", "does not replicate", "not run", "not testable here"

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_FUNCS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max}


class ClaimsError(ValueError):
    """claims.yaml is malformed, or a check names a metric the notebook did not write."""


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    paper_value: str
    ours: str
    check: str | None
    why: str = ""
    untestable: str = ""

    def metric_keys(self) -> set[str]:
        """Every metric key the check and the 'ours' template refer to."""
        keys = set() if self.check is None else _names(ast.parse(self.check, mode="eval"))
        for _, field, _, _ in string.Formatter().parse(self.ours):
            if field:
                keys.add(field)
        return keys


@dataclass(frozen=True)
class ClaimResult:
    paper: str
    claim: Claim
    status: str
    ours: str


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _names(tree: ast.AST) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Call):
            for arg in node.args:
                visit(arg)
            return
        name = _dotted(node)
        if name is not None:
            found.add(name)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def evaluate(expression: str, metrics: Mapping[str, float]) -> bool:
    """Evaluate a check expression against metrics; raises ClaimsError on unknown keys or syntax."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as err:
        raise ClaimsError(f"check {expression!r} is not a valid expression: {err.msg}") from None
    return bool(_eval(tree.body, metrics, expression))


def _eval(node: ast.AST, metrics: Mapping[str, float], src: str) -> Any:
    name = _dotted(node)
    if name is not None:
        if name not in metrics:
            raise ClaimsError(f"check {src!r} uses metric '{name}', which metrics.json does not contain")
        return metrics[name]
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, metrics, src) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        value = _eval(node.operand, metrics, src)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, metrics, src), _eval(node.right, metrics, src))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, metrics, src)
        for op, comparator in zip(node.ops, node.comparators):
            if type(op) not in _CMPOPS:
                raise ClaimsError(f"check {src!r}: comparison {type(op).__name__} is not allowed")
            right = _eval(comparator, metrics, src)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
        return _FUNCS[node.func.id](*[_eval(a, metrics, src) for a in node.args])
    raise ClaimsError(f"check {src!r}: {ast.unparse(node)!r} is not allowed in a check")


def load_claims(path: Path) -> tuple[str, list[Claim]]:
    """Read and validate a claims.yaml: returns (paper title, claims)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ClaimsError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list) or not data["claims"]:
        raise ClaimsError(f"{path} must have 'paper:' and a non-empty 'claims:' list")
    claims, seen = [], set()
    for i, entry in enumerate(data["claims"]):
        missing = [k for k in ("id", "claim", "paper_value") if not entry.get(k)]
        if missing:
            raise ClaimsError(f"{path}: claim #{i + 1} lacks {', '.join(missing)}")
        if entry["id"] in seen:
            raise ClaimsError(f"{path}: claim id {entry['id']} appears twice")
        seen.add(entry["id"])
        check, untestable = entry.get("check"), entry.get("untestable", "")
        if check is None and not untestable:
            raise ClaimsError(f"{path}: claim {entry['id']} has no check; give one, or say why in 'untestable:'")
        claim = Claim(
            id=str(entry["id"]), claim=str(entry["claim"]).strip(), paper_value=str(entry["paper_value"]).strip(),
            ours=str(entry.get("ours", "")).strip(), check=check, why=str(entry.get("why", "")).strip(),
            untestable=str(untestable).strip(),
        )
        if check is not None:
            try:
                ast.parse(check, mode="eval")
            except SyntaxError as err:
                raise ClaimsError(f"{path}: claim {claim.id} check is not valid: {err.msg}") from None
        claims.append(claim)
    return str(data.get("paper", path.parent.name)), claims


def _format_ours(claim: Claim, metrics: Mapping[str, float]) -> str:
    missing = sorted(k for k in claim.metric_keys() if k not in metrics)
    if missing:
        raise ClaimsError(f"claim {claim.id}: metrics.json lacks {', '.join(missing)}")
    return _MetricFormatter().vformat(claim.ours, (), dict(metrics)) if claim.ours else ""


class _MetricFormatter(string.Formatter):
    """Looks a whole dotted field (``{C1.bias:.2f}``) up as one metric key instead of an attribute chain."""

    def get_field(self, field_name: str, args: Any, kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        return kwargs[field_name], field_name


def check_paper_claims(root: Path, paper: str, smoke: bool = False) -> list[ClaimResult]:
    """Check one paper's claims against its metrics.json (or mark them 'not run')."""
    metrics_path = paths.replication_dir(root, paper, smoke) / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    return check_claims(paths.claims_path(root, paper), metrics)


def check_claims(claims_file: Path, metrics: Mapping[str, float] | None) -> list[ClaimResult]:
    """Check a claims.yaml against metrics (None: not run). Notebooks call this to show live verdicts."""
    title, claims = load_claims(claims_file)
    results = []
    for claim in claims:
        if claim.check is None:
            results.append(ClaimResult(title, claim, UNTESTABLE, claim.untestable))
        elif metrics is None:
            results.append(ClaimResult(title, claim, NOT_RUN, ""))
        else:
            status = REPLICATES if evaluate(claim.check, metrics) else FAILS
            results.append(ClaimResult(title, claim, status, _format_ours(claim, metrics)))
    return results


def status_of(results: Sequence[ClaimResult], claim_id: str) -> str:
    """The status of one claim among ``results`` (what a notebook's narrative says about it)."""
    for result in results:
        if result.claim.id == claim_id:
            return result.status
    raise KeyError(f"no claim {claim_id!r} among {[r.claim.id for r in results]}")


def results_table(results: list[ClaimResult]) -> pd.DataFrame:
    """The verdicts as a table (claim, paper's number, ours, status) for display in a notebook."""
    import pandas as pd

    return pd.DataFrame(
        [{"claim": r.claim.id, "paper's number": r.claim.paper_value, "ours": r.ours, "status": r.status}
         for r in results]
    ).set_index("claim")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_report(results_by_paper: Mapping[str, list[ClaimResult]], smoke: bool = False) -> str:
    """The scoreboard as Markdown: one row per claim, plus a per-paper tally."""
    scale = "smoke scale (a fast wiring check: numbers are NOT the replication)" if smoke else "default scale"
    lines = [
        "# Replication scoreboard",
        "",
        f"Generated by `cliplab report` from each paper's `claims.yaml` and `metrics.json`, at {scale}.",
        "A check is written from the paper's claim; 'does not replicate' is a result, explained in the notebook.",
        "",
        "| paper | claim | paper's number | ours | status |",
        "|---|---|---|---|---|",
    ]
    for paper, results in results_by_paper.items():
        for r in results:
            claim_text = f"**{r.claim.id}** {_cell(r.claim.claim)}"
            lines.append(f"| {paper} | {claim_text} | {_cell(r.claim.paper_value)} | {_cell(r.ours)} | {r.status} |")
    lines += ["", "| paper | replicates | does not replicate | not run | not testable here |", "|---|---|---|---|---|"]
    for paper, results in results_by_paper.items():
        counts = [sum(r.status == s for r in results) for s in (REPLICATES, FAILS, NOT_RUN, UNTESTABLE)]
        lines.append(f"| {paper} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines) + "\n"


def write_report(root: Path, papers: list[str], smoke: bool = False) -> tuple[Path, str]:
    """Check every paper and write REPORT.md (under replications/, or replications/smoke/)."""
    results = {}
    for paper in papers:
        checked = check_paper_claims(root, paper, smoke)
        results[checked[0].paper if checked else paper] = checked
    text = render_report(results, smoke)
    target = (paths.replications_dir(root) / "smoke" if smoke else paths.replications_dir(root)) / "REPORT.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target, text
