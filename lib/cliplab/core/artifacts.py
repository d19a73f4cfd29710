"""What a notebook hands back: flat numeric metrics and PNG figures in one output folder.

The runner passes ``out_dir`` (a staging folder it later moves into ``replications/PAPER/``); a notebook
opened by hand gets a scratch folder, so exploring never overwrites versioned results.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cliplab.core import paths

METRIC_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
FIGURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass
class Artifacts:
    """Collects a run's metrics and figures under ``out_dir``."""

    out_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_notebook(cls, paper: str, out_dir: str | Path = "") -> "Artifacts":
        """Use ``out_dir`` when given (the runner), else the paper's scratch folder (interactive use)."""
        target = Path(out_dir) if str(out_dir) else paths.scratch_dir(paths.project_root(), paper)
        target.mkdir(parents=True, exist_ok=True)
        return cls(out_dir=target)

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    def log_metrics(self, values: Mapping[str, Any]) -> None:
        """Record flat ``key -> finite number`` metrics (keys like ``C1.bias_linear``)."""
        for key, value in values.items():
            if not isinstance(key, str) or not METRIC_KEY.match(key):
                raise ValueError(f"metric key {key!r} is not a flat dotted name like 'C1.slope_pp_per_decade'")
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
                raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__}")
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"metric {key!r} is {number}: only finite numbers can be reported")
            self.metrics[key] = number

    def log_replicates(self, series: Mapping[str, Any]) -> None:
        """Record metrics measured over independent replicates: ``KEY.r0 … KEY.r{n-1}`` and ``KEY`` = their mean.

        A check that names ``KEY`` is then scored over the replicates (``cliplab.core.replicates``); prose and
        the 'ours' column read the mean. Every value must be finite; at least one replicate is required.
        """
        for key, values in series.items():
            numbers = [float(v) for v in values]
            if not numbers:
                raise ValueError(f"metric {key!r}: no replicates given")
            self.log_metrics({f"{key}.r{i}": v for i, v in enumerate(numbers)})
            self.log_metrics({key: math.fsum(numbers) / len(numbers)})

    def write_metrics(self) -> Path:
        """Write ``metrics.json`` with sorted keys, so identical runs give identical bytes."""
        path = self.out_dir / "metrics.json"
        path.write_text(json.dumps(self.metrics, indent=2, sort_keys=True) + "\n")
        return path

    def save_figure(self, fig: Any, name: str, dpi: int = 150) -> Path:
        """Save a matplotlib figure as ``figures/NAME.png``; the notebook still shows it inline."""
        if not FIGURE_NAME.match(name):
            raise ValueError(f"figure name {name!r} must be letters, digits, '_' or '-' (no extension)")
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        path = self.figures_dir / f"{name}.png"
        # A fixed 'Software' tag and no timestamp keep the PNG bytes reproducible.
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": "cliplab"})
        return path
