"""One house style for figures, so every notebook's plots read the same way."""

from __future__ import annotations

import matplotlib

import seaborn as sns


def use_style() -> None:
    """Apply the cliplab seaborn theme (call once at the top of a notebook)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "figure.autolayout": False})
