"""Compare this machine's results with versioned ones: same verdict or not, and each metric against tolerance.

A replication reproduced on another CPU rarely matches to the bit; what must hold is the verdict. ``compare``
scores both metric sets with the same claims.yaml and lists, per claim, both statuses and every metric the
claim reads whose difference exceeds the paper's tolerance (``tolerance: {abs, rel}`` in claims.yaml,
default ``DEFAULT_TOLERANCE``): ``|ours − theirs| ≤ abs + rel·|theirs|``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from cliplab.core import paths
from cliplab.core.claims import FAILS, REPLICATES, check_claims
from cliplab.core.replicates import REPLICATE_KEY

DEFAULT_TOLERANCE = {"abs": 0.05, "rel": 0.1}


@dataclass(frozen=True)
class ClaimComparison:
    claim: str
    ours: str
    theirs: str
    off_tolerance: tuple[tuple[str, float, float], ...]  # (metric, ours, theirs)

    @property
    def same_verdict(self) -> bool:
        return self.ours == self.theirs

    @property
    def contradicts(self) -> bool:
        """One side says the claim replicates and the other that it does not (not just decided vs undecided)."""
        return {self.ours, self.theirs} == {REPLICATES, FAILS}


def tolerance(claims_file: Path) -> dict[str, float]:
    """The paper's metric tolerance from claims.yaml's ``tolerance:`` (or the default)."""
    data = yaml.safe_load(claims_file.read_text()) or {}
    return {**DEFAULT_TOLERANCE, **{k: float(v) for k, v in (data.get("tolerance") or {}).items()}}


def within(ours: float, theirs: float, tol: Mapping[str, float]) -> bool:
    return math.isclose(ours, theirs, rel_tol=0.0, abs_tol=tol["abs"] + tol["rel"] * abs(theirs))


def compare(claims_file: Path, ours: Mapping[str, float], theirs: Mapping[str, float],
            smoke: bool = False) -> list[ClaimComparison]:
    """Per claim: both verdicts and the metrics it reads (replicates included) that differ beyond tolerance."""
    tol = tolerance(claims_file)
    mine, other = check_claims(claims_file, ours, smoke), check_claims(claims_file, theirs, smoke)
    rows = []
    for a, b in zip(mine, other):
        keys = a.claim.metric_keys()
        keys |= {k for k in ours if (m := REPLICATE_KEY.match(k)) and m["base"] in keys}
        off = tuple((k, float(ours[k]), float(theirs[k])) for k in sorted(keys)
                    if k in ours and k in theirs and not within(float(ours[k]), float(theirs[k]), tol))
        missing = tuple((k, float(ours.get(k, math.nan)), float(theirs.get(k, math.nan))) for k in sorted(keys)
                        if (k in ours) != (k in theirs))
        rows.append(ClaimComparison(a.claim.id, a.status, b.status, off + missing))
    return rows


def load_metrics(folder: Path, paper: str) -> dict[str, float] | None:
    """``folder/PAPER/metrics.json`` (None when absent)."""
    path = folder / paper / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def versioned_metrics(root: Path, paper: str, smoke: bool, rev: str) -> dict[str, float]:
    """The metrics.json that dvc.lock at ``rev`` records, read through DVC (local cache, else the remote)."""
    import dvc.api

    rel = (paths.replication_dir(root, paper, smoke) / "metrics.json").relative_to(root).as_posix()
    return json.loads(dvc.api.read(rel, repo=str(root), rev=rev))


def render(paper: str, rows: list[ClaimComparison]) -> list[str]:
    """One line per claim, then one indented line per metric beyond tolerance or written on one side only."""
    lines = []
    for row in rows:
        word = ("same verdict" if row.same_verdict else "CONTRADICTING VERDICT" if row.contradicts
                else "DIFFERENT VERDICT (decided on one side, inconclusive or untested on the other)")
        lines.append(f"{paper} {row.claim}: {word} (here: {row.ours}; versioned: {row.theirs})")
        lines += [f"    {key}: here {a:.6g}, versioned {b:.6g} "
                  + ("(written on one side only)" if math.isnan(a) or math.isnan(b) else "(beyond tolerance)")
                  for key, a, b in row.off_tolerance]
    return lines
