"""Freezing checks: record each check's hash and date in claims.yaml, and every change made after a run.

``cliplab claims freeze PAPER --reason TEXT`` is the only sanctioned way to change a check: it compares each
check with its frozen hash (or, for a check never frozen, with the version committed at ``--since``), and when
a default-scale result of the paper has been recorded (its stage is in ``dvc.lock``) it appends a
``revised:`` entry with the date, the reason and the verdict the old check gave on the recorded metrics.
The file is edited line by line, so its hand-written layout and comments survive.
"""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from cliplab.core import paths
from cliplab.core.claims import Claim, ClaimsError, check_hash, verdict
from cliplab.core.replicates import CheckError, score


def _committed_entries(root: Path, path: Path, since: str) -> dict[str, dict[str, Any]]:
    """The claim entries of claims.yaml as committed at ``since`` ({} when git or the file there is absent)."""
    rel = path.relative_to(root).as_posix()
    try:
        text = subprocess.run(["git", "-C", str(root), "show", f"{since}:{rel}"], capture_output=True, text=True,
                              check=True, timeout=30).stdout
        data = yaml.safe_load(text) or {}
    except (OSError, subprocess.SubprocessError, yaml.YAMLError):
        return {}
    return {str(c["id"]): c for c in data.get("claims", [])}


def _result_recorded(root: Path, paper: str) -> bool:
    lock = root / "dvc.lock"
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}) if lock.is_file() else {}
    return paper in stages


def _verdict_before(root: Path, paper: str, old_check: str, entry: dict[str, Any]) -> str:
    """What the old check said about the recorded default-scale metrics, or why that cannot be said here."""
    metrics_path = paths.replication_dir(root, paper, smoke=False) / "metrics.json"
    if not metrics_path.is_file():
        return ("not recomputable in this checkout: the default-scale metrics.json recorded in dvc.lock is not in "
                "its DVC cache (`dvc pull` it and the verdict can be read with the old check)")
    claim = Claim(id=str(entry["id"]), claim="", paper_value="", ours="", check=old_check,
                  min_replicates=int((entry.get("replicates") or {}).get("min", 1)))
    try:
        status, reason = verdict(claim, score(old_check, json.loads(metrics_path.read_text())))
    except CheckError as err:
        return f"the old check could not be scored on the recorded metrics ({err})"
    return status + (f" ({reason})" if reason else "")


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) line ranges of each ``  - id:`` entry under ``claims:``."""
    starts = [i for i, line in enumerate(lines) if line.startswith("  - id:")]
    return [(s, starts[k + 1] if k + 1 < len(starts) else len(lines)) for k, s in enumerate(starts)]


def _rewrite_block(block: list[str], frozen: dict[str, str], revisions: list[dict[str, str]]) -> list[str]:
    kept, skipping = [], False
    for line in block:
        if line.startswith(("    frozen:", "    revised:")):
            skipping = line.startswith("    revised:")
            continue
        if skipping and (line.startswith("      ") or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    tail = []
    while kept and not kept[-1].strip():
        tail.append(kept.pop())
    kept.append(f"    frozen: {{date: {json.dumps(frozen['date'])}, sha256: {json.dumps(frozen['sha256'])}}}")
    if revisions:
        kept.append("    revised:")
        for rev in revisions:
            kept.append(f"      - date: {json.dumps(rev['date'])}")
            kept.append(f"        reason: {json.dumps(rev['reason'], ensure_ascii=False)}")
            kept.append(f"        before: {json.dumps(rev['before'], ensure_ascii=False)}")
    return kept + tail


def freeze(root: Path, paper: str, reason: str = "", since: str = "HEAD", today: str = "") -> list[str]:
    """Freeze every check of ``paper`` against its version committed at ``since``; returns what changed.

    A check equal to the committed one (same text, same ``replicates:``) keeps its record. A changed check gets
    today's date and its new hash, and, when a default-scale result was recorded (dvc.lock), the committed
    revisions plus one new entry; an uncommitted entry already there is kept (its reason may be edited by hand). Refuses (ClaimsError, file untouched) when a revision
    is due and no reason is given.
    """
    path = paths.claims_path(root, paper)
    text = path.read_text()
    data = yaml.safe_load(text)
    date = today or datetime.date.today().isoformat()
    committed = _committed_entries(root, path, since)
    recorded = _result_recorded(root, paper)
    lines, report = text.splitlines(), []
    updates: dict[str, tuple[dict[str, str], list[dict[str, str]]]] = {}
    for entry in data["claims"]:
        claim_id, check = str(entry["id"]), entry.get("check")
        if not check:
            continue
        digest, base = check_hash(check), committed.get(claim_id, {})
        old = base.get("check")
        revisions = list(base.get("revised") or [])
        rescored = base.get("replicates") != entry.get("replicates")  # same text, scored over other replicates
        current = list(entry.get("revised") or [])
        if old is not None and check_hash(old) == digest and not rescored:
            frozen = base.get("frozen") or {"date": date, "sha256": digest}
        elif len(current) == len(revisions) + 1 and current[:-1] == revisions:
            frozen, revisions = {"date": date, "sha256": digest}, current  # this change is recorded already
            frozen = entry.get("frozen") if (entry.get("frozen") or {}).get("sha256") == digest else frozen
        else:
            frozen = {"date": date, "sha256": digest}
            if old is not None and recorded:
                if not reason:
                    raise ClaimsError(f"{path}: claim {claim_id}'s check changed after a default-scale result was "
                                      "recorded (dvc.lock); give --reason so the revision is on the scoreboard")
                revisions.append({"date": date, "reason": reason, "before": _verdict_before(root, paper, old, entry)})
        if entry.get("frozen") == frozen and list(entry.get("revised") or []) == revisions:
            continue
        updates[claim_id] = ({"date": str(frozen["date"]), "sha256": str(frozen["sha256"])}, revisions)
        report.append(f"{paper} {claim_id}: frozen {digest}" + (f", {len(revisions)} revision(s)" if revisions else ""))
    out: list[str] = []
    previous = 0
    for start, end in _blocks(lines):
        out += lines[previous:start]
        block = lines[start:end]
        claim_id = str(yaml.safe_load("\n".join(block))[0]["id"])
        out += _rewrite_block(block, *updates[claim_id]) if claim_id in updates else block
        previous = end
    out += lines[previous:]
    new_text = "\n".join(out) + "\n"
    parsed = yaml.safe_load(new_text)
    if [e.get("check") for e in parsed["claims"]] != [e.get("check") for e in data["claims"]]:
        raise ClaimsError(f"{path}: freezing would change a check's text; the file is left as it was")
    path.write_text(new_text)
    return report
