"""Shared fixtures: the real project root, and a tiny throwaway project for runner tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

DEMO_NOTEBOOK = '''\
# %% [markdown]
# # Demo paper (test fixture)

# %% tags=["parameters"]
smoke: bool = False  # shrink for CI
n: int = 3  # how many numbers
scale: float = 1.5  # multiplier
label: str = "x"  # a label
fail: bool = False  # raise in the work cell
sleep_s: float = 0.0  # sleep this long in the work cell
die: bool = False  # kill the kernel
out_dir: str = ""  # set by the runner

# %%
import os, time
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from cliplab.core.artifacts import Artifacts

art = Artifacts.for_notebook("demo", out_dir)

# %%
time.sleep(sleep_s)
if die:
    os._exit(1)
if fail:
    raise ValueError("deliberate failure")
fig, ax = plt.subplots()
ax.plot(range(n))
art.save_figure(fig, "line")
art.log_metrics({"C1.total": n * scale, "C1.n": n})
art.write_metrics()
'''

DEMO_CLAIMS = '''\
paper: "Demo paper"
claims:
  - id: C1
    claim: "The total exceeds four."
    paper_value: "> 4"
    ours: "{C1.total:.2f}"
    check: "C1.total > 4"
    replicates: {over: none}
    frozen: {date: "2026-12-03", sha256: "401956713064a6e9"}
  - id: C2
    claim: "Needs data we cannot have."
    paper_value: "n/a"
    check: null
    untestable: "needs a web-scale corpus"
'''


@pytest.fixture
def demo_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A minimal cliplab project with one fast paper, 'demo'."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "replications" / "demo").mkdir(parents=True)
    (root / "notebooks" / "demo.py").write_text(DEMO_NOTEBOOK)
    (root / "replications" / "demo" / "claims.yaml").write_text(DEMO_CLAIMS)
    (root / "params.yaml").write_text(textwrap.dedent("""\
        papers: [demo]
        demo:
          n: 3
        """))
    monkeypatch.setenv("CLIPLAB_ROOT", str(root))
    return root
