"""What a real-model run measured on, and why a claim could not be scored there: the run's ``scope.json``.

The real-model scoreboard scores each claim with the zoo's checks on the metrics the notebook wrote, and
marks the others "not testable here" with the reason recorded here. Two guards decide before any claim is
scored: the model must be competent on the task (:func:`competence`: top-1 above chance by a stated margin,
and significantly so), and each claim's sample must be large enough (the notebook states the reason when not).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCOPE_FILE = "scope.json"
COMPETENCE_MARGIN = 0.10  # top-1 must exceed chance by this much (absolute) ...
COMPETENCE_ALPHA = 0.01  # ... and a one-sided binomial test against chance must reject at this level


@dataclass(frozen=True)
class Competence:
    """Whether the model does the task at all: top-1 against chance on ``n`` test images."""

    accuracy: float
    chance: float
    n: int
    p_value: float
    margin: float = COMPETENCE_MARGIN
    alpha: float = COMPETENCE_ALPHA

    @property
    def competent(self) -> bool:
        return self.accuracy >= self.chance + self.margin and self.p_value < self.alpha

    def reason(self) -> str:
        """Why claims are not scored ('' when the model is competent)."""
        if self.competent:
            return ""
        return (f"the model is not competent on this task: top-1 {self.accuracy:.3f} on {self.n} images against "
                f"chance {self.chance:.3f} (needs ≥ chance + {self.margin:.2f} and binomial p < {self.alpha}; "
                f"p = {self.p_value:.3g}); its claims would measure noise")


def competence(correct: int, total: int, n_classes: int, margin: float = COMPETENCE_MARGIN,
               alpha: float = COMPETENCE_ALPHA) -> Competence:
    """Top-1 ``correct / total`` against chance ``1 / n_classes``, with a one-sided binomial test."""
    from scipy.stats import binomtest

    if total < 1 or n_classes < 2:
        raise ValueError(f"competence needs ≥ 1 test image and ≥ 2 classes, got {total} and {n_classes}")
    chance = 1.0 / n_classes
    p = float(binomtest(int(correct), int(total), chance, alternative="greater").pvalue)
    return Competence(correct / total, chance, int(total), p, margin, alpha)


@dataclass
class Scope:
    """One real-model run of one paper: model, weights, data, sizes, and the claims it could not score."""

    paper: str
    model: str
    pretrained: str
    source: str
    device: str
    smoke: bool
    data: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    replicates: str = ""
    competence: dict[str, Any] = field(default_factory=dict)
    untestable: dict[str, str] = field(default_factory=dict)
    date: str = field(default_factory=lambda: dt.date.today().isoformat())

    def not_testable(self, claims: Mapping[str, str] | list[str], reason: str = "") -> None:
        """Mark claims not testable: ``{id: reason}``, or ids sharing one ``reason`` (first reason wins)."""
        items = claims.items() if isinstance(claims, Mapping) else ((c, reason) for c in claims)
        for claim_id, why in items:
            if not why:
                raise ValueError(f"claim {claim_id}: a not-testable mark needs its reason")
            self.untestable.setdefault(claim_id, why)

    def guard(self, check: Competence, claims: list[str], force: bool = False) -> bool:
        """Record the competence check; when the model is not competent, mark ``claims`` and return False.

        ``force`` scores them anyway (a wiring check on a random model); the record and the report say so.
        """
        self.competence = asdict(check) | {"competent": check.competent, "forced": bool(force)}
        if not check.competent and not force:
            self.not_testable(claims, check.reason())
        return check.competent or force

    def write(self, out_dir: str | Path) -> Path:
        target = Path(out_dir) / SCOPE_FILE
        target.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return target


def read_scope(folder: str | Path) -> Scope | None:
    """The scope a real-model run wrote into ``folder`` (None for a zoo run, which writes none)."""
    path = Path(folder) / SCOPE_FILE
    if not path.is_file():
        return None
    return Scope(**json.loads(path.read_text()))
