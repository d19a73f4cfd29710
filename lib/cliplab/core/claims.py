"""The claims scoreboard: each paper's claims.yaml checked against the metrics.json its notebook wrote.

A check is a small boolean expression over metric keys (``C1.bias_relu > 0``). It is evaluated by a
whitelisting interpreter, never by ``eval``; a key the notebook did not write is an error, not a silent fail.
A metric measured over replicates (``KEY.r0 …``) is scored over them by ``cliplab.core.replicates``, and the
verdict follows one rule for every claim (``RULE``). Each check is frozen with a hash and a date
(``cliplab claims freeze``); a check changed after a result was recorded carries ``revised:`` entries.
"""

from __future__ import annotations

import ast
import hashlib
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cliplab.core import paths
from cliplab.core.replicates import CheckError, Scored, score

if TYPE_CHECKING:
    import pandas as pd

REPLICATES, FAILS, INCONCLUSIVE = "replicates", "does not replicate", "inconclusive"
NOT_RUN, UNTESTABLE = "not run", "not testable here"
STATUSES = (REPLICATES, FAILS, INCONCLUSIVE, NOT_RUN, UNTESTABLE)
SMOKE_REPLICATES = 2  # smoke runs keep two replicates: enough to wire the scoring, not to decide a claim

RULE = (
    "Each check is scored twice. Per replicate: the check on that replicate's metrics alone. Pooled: every "
    "comparison `a op b` in it on the mean over replicates of `a − b`, with its 95 % t-interval over replicates; "
    "a comparison holds when the whole interval is on its side, fails when the whole interval is on the other, "
    "and is undecided when the interval straddles the threshold (`and`/`or` combine these three-valued, as in "
    "Kleene's logic). A claim **replicates** when the pooled check holds and every replicate passes; it **does "
    "not replicate** when the pooled check fails and every replicate fails; otherwise it is **inconclusive**: "
    "an interval straddles the threshold, the replicates disagree, or fewer replicates ran than the claim needs "
    "(its `replicates: min`, at least 5 for a trend or a correlation at default scale; every claim needs only "
    f"{SMOKE_REPLICATES} at smoke scale, where verdicts check the wiring, not the paper). A claim whose quantity "
    "is an exact computation with no randomness is scored on its one value (`replicates: {over: none}`)."
)


class ClaimsError(ValueError):
    """claims.yaml is malformed, a check is not frozen, or a check names a metric the notebook did not write."""


def check_hash(check: str) -> str:
    """The hash a check is frozen with: sha256 of its whitespace-normalised text, first 16 hex digits."""
    return hashlib.sha256(" ".join(check.split()).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Revision:
    """A change of a check after a result had been recorded: when, why, and the verdict it had before."""

    date: str
    reason: str
    before: str


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    paper_value: str
    ours: str
    check: str | None
    why: str = ""
    untestable: str = ""
    replicates_over: str = "none"
    min_replicates: int = 1
    frozen_date: str = ""
    frozen_hash: str = ""
    revised: tuple[Revision, ...] = field(default_factory=tuple)

    def metric_keys(self) -> set[str]:
        """Every metric key the check and the 'ours' template refer to."""
        keys = set() if self.check is None else _names(ast.parse(self.check, mode="eval"))
        for _, name, _, _ in string.Formatter().parse(self.ours):
            if name:
                keys.add(name)
        return keys

    def needed(self, smoke: bool) -> int:
        """How many replicates a verdict needs at this scale."""
        return min(self.min_replicates, SMOKE_REPLICATES) if smoke else self.min_replicates


@dataclass(frozen=True)
class ClaimResult:
    paper: str
    claim: Claim
    status: str
    ours: str
    scored: Scored | None = None
    reason: str = ""

    @property
    def passing(self) -> str:
        """'k/n' replicates whose own check passes ('' when the claim was not scored)."""
        if self.scored is None:
            return ""
        return f"{sum(self.scored.per_replicate)}/{self.scored.n}"

    @property
    def pooled(self) -> str:
        """Each pooled comparison with its mean and CI over replicates, '; '-separated."""
        return "" if self.scored is None else "; ".join(c.describe() for c in self.scored.comparisons)


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


def evaluate(expression: str, metrics: Mapping[str, float]) -> bool | None:
    """The pooled verdict of a check (True / False / None: undecided); raises ClaimsError on bad checks."""
    try:
        return score(expression, metrics).pooled
    except CheckError as err:
        raise ClaimsError(str(err)) from None


def _replicates(path: Path, claim_id: str, entry: Any) -> tuple[str, int]:
    """Parse ``replicates: {over: WHAT, min: N}`` (``over: none`` for an exact computation, min 1)."""
    if not isinstance(entry, dict) or not str(entry.get("over", "")).strip():
        raise ClaimsError(
            f"{path}: claim {claim_id} lacks 'replicates: {{over: <what varies between replicates>, min: <n>}}' "
            "(or 'replicates: {over: none}' when its quantity is an exact computation)"
        )
    over = str(entry["over"]).strip()
    minimum = int(entry.get("min", 1 if over == "none" else 5))
    if over == "none" and minimum != 1 or minimum < 1:
        raise ClaimsError(f"{path}: claim {claim_id} replicates.min must be 1 with 'over: none', else >= 1")
    return over, minimum


def _frozen(path: Path, claim_id: str, check: str, entry: Any) -> tuple[str, str]:
    """The date and hash a check was frozen with; refuses a check that changed since."""
    fix = f"run `cliplab claims freeze {path.parent.name} --reason '...'` (it records the change if a result exists)"
    if not isinstance(entry, dict) or not entry.get("sha256") or not entry.get("date"):
        raise ClaimsError(f"{path}: claim {claim_id}'s check is not frozen (no 'frozen: {{date, sha256}}'); {fix}")
    if str(entry["sha256"]) != check_hash(check):
        raise ClaimsError(f"{path}: claim {claim_id}'s check changed since it was frozen on {entry['date']}; {fix}")
    return str(entry["date"]), str(entry["sha256"])


def _revisions(path: Path, claim_id: str, entries: Any) -> tuple[Revision, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list) or any(not isinstance(e, dict) for e in entries):
        raise ClaimsError(f"{path}: claim {claim_id} 'revised:' must be a list of {{date, reason, before}}")
    for e in entries:
        missing = [k for k in ("date", "reason", "before") if not str(e.get(k, "")).strip()]
        if missing:
            raise ClaimsError(f"{path}: claim {claim_id} has a 'revised:' entry without {', '.join(missing)}")
    return tuple(Revision(str(e["date"]), str(e["reason"]).strip(), str(e["before"]).strip()) for e in entries)


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
        claim_id = str(entry["id"])
        check, untestable = entry.get("check"), entry.get("untestable", "")
        if check is None and not untestable:
            raise ClaimsError(f"{path}: claim {claim_id} has no check; give one, or say why in 'untestable:'")
        over, minimum, date, digest = "none", 1, "", ""
        if check is not None:
            try:
                ast.parse(check, mode="eval")
            except SyntaxError as err:
                raise ClaimsError(f"{path}: claim {claim_id} check is not valid: {err.msg}") from None
            over, minimum = _replicates(path, claim_id, entry.get("replicates"))
            date, digest = _frozen(path, claim_id, check, entry.get("frozen"))
        claims.append(Claim(
            id=claim_id, claim=str(entry["claim"]).strip(), paper_value=str(entry["paper_value"]).strip(),
            ours=str(entry.get("ours", "")).strip(), check=check, why=str(entry.get("why", "")).strip(),
            untestable=str(untestable).strip(), replicates_over=over, min_replicates=minimum, frozen_date=date,
            frozen_hash=digest, revised=_revisions(path, claim_id, entry.get("revised")),
        ))
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
    return check_claims(paths.claims_path(root, paper), metrics, smoke)


def verdict(claim: Claim, scored: Scored, smoke: bool = False) -> tuple[str, str]:
    """Apply ``RULE``: (status, why it is inconclusive or '')."""
    passed, needed = sum(scored.per_replicate), claim.needed(smoke)
    if scored.n < needed:
        return INCONCLUSIVE, f"{scored.n} replicate(s) of the {needed} it needs"
    if 0 < passed < scored.n:
        return INCONCLUSIVE, f"replicates disagree ({passed} of {scored.n} pass)"
    if scored.pooled is None:
        return INCONCLUSIVE, "the pooled interval straddles the threshold"
    if scored.pooled and passed == scored.n:
        return REPLICATES, ""
    if not scored.pooled and passed == 0:
        return FAILS, ""
    return INCONCLUSIVE, "the pooled check and the replicates disagree"


def check_claims(claims_file: Path, metrics: Mapping[str, float] | None, smoke: bool = False,
                 untestable: Mapping[str, str] | None = None) -> list[ClaimResult]:
    """Check a claims.yaml against metrics (None: not run). Notebooks call this to show live verdicts.

    ``untestable`` maps claim ids to why this run could not measure them (a real-model run's scope): those
    claims are 'not testable here' with that reason, and their metrics need not exist.
    """
    title, claims = load_claims(claims_file)
    unknown = sorted(set(untestable or {}) - {c.id for c in claims})
    if unknown:
        raise ClaimsError(f"{claims_file}: no claim {', '.join(unknown)} (marked not testable by the run)")
    results = []
    for claim in claims:
        if claim.check is None:
            results.append(ClaimResult(title, claim, UNTESTABLE, claim.untestable))
        elif untestable and claim.id in untestable:
            results.append(ClaimResult(title, claim, UNTESTABLE, "", reason=untestable[claim.id]))
        elif metrics is None:
            results.append(ClaimResult(title, claim, NOT_RUN, ""))
        else:
            try:
                scored = score(claim.check, metrics)
            except CheckError as err:
                raise ClaimsError(f"claim {claim.id}: {err}") from None
            status, reason = verdict(claim, scored, smoke)
            results.append(ClaimResult(title, claim, status, _format_ours(claim, metrics), scored, reason))
    return results


def status_of(results: Sequence[ClaimResult], claim_id: str) -> str:
    """The status of one claim among ``results`` (what a notebook's narrative says about it)."""
    for result in results:
        if result.claim.id == claim_id:
            return result.status
    raise KeyError(f"no claim {claim_id!r} among {[r.claim.id for r in results]}")


def results_table(results: list[ClaimResult]) -> pd.DataFrame:
    """The verdicts as a table (claim, paper's number, ours, pooled, replicates passing, status) for a notebook."""
    import pandas as pd

    return pd.DataFrame(
        [{"claim": r.claim.id, "paper's number": r.claim.paper_value, "ours": r.ours,
          "pooled over replicates (95 % CI)": r.pooled, "replicates passing": r.passing, "status": _status_cell(r)}
         for r in results]
    ).set_index("claim")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _status_cell(result: ClaimResult) -> str:
    text = result.status + (f" ({result.reason})" if result.reason else "")
    if result.claim.revised:
        dates = ", ".join(r.date for r in result.claim.revised)
        text += f"; check revised after a run ({dates})"
    return text


def _claims_table(results_by_paper: Mapping[str, list[ClaimResult]], smoke: bool,
                  over_by_paper: Mapping[str, str] | None = None) -> list[str]:
    """One row per claim, then the per-paper tally of statuses (Markdown lines). ``over_by_paper`` replaces the
    claims' own replicate source (a real-model run replicates over its own: folds, fine-tuning seeds)."""
    lines = [
        "| paper | claim | paper's number | ours | replicates | pooled over replicates (95 % CI) | passing | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for paper, results in results_by_paper.items():
        for r in results:
            claim_text = f"**{r.claim.id}** {_cell(r.claim.claim)}"
            source = r.claim.replicates_over if over_by_paper is None else over_by_paper.get(paper, "")
            over = "" if r.claim.check is None or r.status == UNTESTABLE else f"{source} (needs {r.claim.needed(smoke)})"
            lines.append(f"| {paper} | {claim_text} | {_cell(r.claim.paper_value)} | {_cell(r.ours)} | {_cell(over)} "
                         f"| {_cell(r.pooled)} | {r.passing} | {_cell(_status_cell(r))} |")
    lines += ["", "| paper | " + " | ".join(STATUSES) + " |", "|---|---|---|---|---|---|"]
    for paper, results in results_by_paper.items():
        counts = [sum(r.status == s for r in results) for s in STATUSES]
        lines.append(f"| {paper} | " + " | ".join(map(str, counts)) + " |")
    return lines


def render_report(results_by_paper: Mapping[str, list[ClaimResult]], smoke: bool = False) -> str:
    """The scoreboard as Markdown: the scoring rule, one row per claim, a per-paper tally, the revisions."""
    scale = "smoke scale (a fast wiring check: numbers are NOT the replication)" if smoke else "default scale"
    lines = [
        "# Replication scoreboard",
        "",
        f"Generated by `cliplab report` from each paper's `claims.yaml` and `metrics.json`, at {scale}.",
        "A check is written from the paper's claim and frozen (hash and date in claims.yaml) before the run that",
        "scores it; a check changed after a run says so in its status. 'Does not replicate' is a result,",
        "explained in the notebook.",
        "",
        f"**How a claim is scored.** {RULE}",
        "",
        *_claims_table(results_by_paper, smoke),
    ]
    revisions = [(paper, r.claim, rev) for paper, results in results_by_paper.items() for r in results
                 for rev in r.claim.revised]
    if revisions:
        lines += ["", "## Checks revised after a run", "", "| paper | claim | date | reason | verdict before |",
                  "|---|---|---|---|---|"]
        lines += [f"| {paper} | {claim.id} | {rev.date} | {_cell(rev.reason)} | {_cell(rev.before)} |"
                  for paper, claim, rev in revisions]
    return "\n".join(lines) + "\n"


def render_real_report(title: str, header: Sequence[tuple[str, str]], results_by_paper: Mapping[str, list[ClaimResult]],
                       smoke: bool = False, replicates: Mapping[str, str] | None = None) -> str:
    """The scoreboard of one real model: what it was run on (``header`` rows), then the zoo's table and rule.

    The checks are the zoo's, unchanged; a claim the run could not measure says why in its status.
    """
    scale = "smoke scale (a wiring check: numbers are NOT a measurement)" if smoke else "default scale"
    lines = [
        f"# {title}",
        "",
        f"Generated by `cliplab report --real` at {scale}, with the same frozen checks as the zoo's scoreboard",
        "(`replications/REPORT.md`). A claim is scored only where the model is competent on the task and the",
        "sample is large enough; otherwise its status says why it is not testable here.",
        "",
        "| | |",
        "|---|---|",
        *[f"| {_cell(k)} | {_cell(v)} |" for k, v in header],
        "",
        f"**How a claim is scored.** {RULE}",
        "",
        *_claims_table(results_by_paper, smoke, replicates or {}),
    ]
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
