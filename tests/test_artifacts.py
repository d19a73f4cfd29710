"""A notebook's outputs: validated flat metrics, reproducible metrics.json and PNG figures."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cliplab.core.artifacts import Artifacts  # noqa: E402


def test_metrics_are_flat_finite_numbers(tmp_path: Path) -> None:
    art = Artifacts(tmp_path)
    art.log_metrics({"C1.slope": np.float64(2.5), "C2.n": 3, "ref.x_y": 0.0})
    art.log_metrics({"C1.slope": 3.0})  # a later value replaces an earlier one
    path = art.write_metrics()
    assert json.loads(path.read_text()) == {"C1.slope": 3.0, "C2.n": 3.0, "ref.x_y": 0.0}
    assert path.read_text() == Artifacts(tmp_path, dict(reversed(list(art.metrics.items())))).write_metrics().read_text()


@pytest.mark.parametrize(
    ("values", "error"),
    [({"C1 slope": 1.0}, ValueError), ({"": 1.0}, ValueError), ({"C1.x": float("nan")}, ValueError),
     ({"C1.x": float("inf")}, ValueError), ({"C1.x": "high"}, TypeError), ({"C1.x": True}, TypeError),
     ({"C1.x": [1, 2]}, TypeError)],
)
def test_bad_metrics_are_rejected(tmp_path: Path, values: dict, error: type) -> None:
    with pytest.raises(error):
        Artifacts(tmp_path).log_metrics(values)


def test_figures_are_reproducible_pngs(tmp_path: Path) -> None:
    def draw(folder: Path) -> bytes:
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        path = Artifacts(folder).save_figure(fig, "line")
        plt.close(fig)
        assert path == folder / "figures" / "line.png"
        return path.read_bytes()

    a, b = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b
    with pytest.raises(ValueError, match="figure name"):
        Artifacts(tmp_path).save_figure(plt.figure(), "bad name.png")


def test_interactive_runs_write_to_scratch(demo_project: Path) -> None:
    art = Artifacts.for_notebook("demo", "")
    assert art.out_dir == demo_project / ".cliplab" / "scratch" / "demo" and art.out_dir.is_dir()
