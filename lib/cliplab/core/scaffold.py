"""``cliplab new PAPER``: scaffold a new replication that runs and passes the test suite as soon as it exists.

It writes the paper's package (``lib/cliplab/PAPER/``: a seeded toy experiment and the narrative that renders
the run's prose from its metrics), its notebook (header, typed parameters cell with the smoke switch, calls
into the package, a figure, the verdicts), ``replications/PAPER/claims.yaml`` with one example claim, a
``params.yaml`` block and a unit test, then rewrites ``dvc.yaml`` (``cliplab.core.pipeline``), which gives the
paper its two stages (default and smoke) with deps derived from the notebook's import closure. Every check on
the name and on existing files happens before the first file is written, so a refused call changes nothing.

The example claim, experiment and prose are placeholders to replace with the paper's: the README's "Adding a
paper" section walks through it.
"""

from __future__ import annotations

import datetime
import keyword
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

from cliplab.core import paths, pipeline
from cliplab.core.claims import check_hash
from cliplab.core.fingerprint import numeric_fingerprint

RESERVED = {"core", "world", "models", "eval", "zoo", "stats", "plots", "cli", "cliplab", "smoke", "report"}
NAME = re.compile(r"[a-z][a-z0-9_]{1,40}")


class ScaffoldError(ValueError):
    """The name or the project refuses a new paper; nothing was written."""


@dataclass(frozen=True)
class Scaffold:
    """The files ``new_paper`` writes (repository-relative path → text) and the new params.yaml text."""

    files: dict[str, str]
    params_yaml: str


def _check_name(root: Path, paper: str) -> None:
    if not NAME.fullmatch(paper) or keyword.iskeyword(paper):
        raise ScaffoldError(f"paper name {paper!r} must be a lower-case Python identifier of 2-41 characters "
                            "(letters, digits, '_'), e.g. 'my_paper'")
    if paper in RESERVED:
        raise ScaffoldError(f"paper name {paper!r} is taken by cliplab itself ({sorted(RESERVED)}); choose another")
    params = yaml.safe_load(paths.params_path(root).read_text()) or {}
    taken = [p for p in (f"notebooks/{paper}.py", f"lib/cliplab/{paper}", f"lib/cliplab/{paper}.py",
                         f"replications/{paper}", f"tests/test_{paper}.py") if (root / p).exists()]
    if paper in params.get("papers", []) or paper in params:
        taken.append(f"params.yaml: {paper}")
    if taken:
        raise ScaffoldError(f"paper {paper!r} exists already ({', '.join(taken)}); choose another name or remove those")


def _package_init(paper: str, title: str) -> str:
    return f'''"""{title}: the replication's logic (``cliplab new`` scaffold — replace the toy experiment with the paper's).

``experiment`` computes what the claims read; ``narrative`` renders the notebook's description of a run from
its metrics and verdicts, so the text never contradicts the numbers below it.
"""
'''


EXPERIMENT = '''"""The experiment of this replication (scaffold: a seeded toy estimate, to replace with the paper's).

A function of its parameters and seeds: same parameters and seeds, same metrics. Each seed is one independent
replicate; the claim is scored over them (``cliplab.core.replicates``), not over one run's samples.
"""

from __future__ import annotations

import numpy as np


def samples(n: int, effect: float, seed: int) -> np.ndarray:
    """``n`` Gaussian draws around ``effect`` (unit variance), from their own seeded generator."""
    if n < 1:
        raise ValueError(f"n={n}: need at least 1 sample")
    return np.random.default_rng(seed).normal(effect, 1.0, size=n)


def replicate_means(n: int, effect: float, seeds: int, seed: int = 0) -> list[float]:
    """The mean of ``n`` fresh draws for each of ``seeds`` independent seeds (``seed``, ``seed + 1``, ...)."""
    if seeds < 1:
        raise ValueError(f"seeds={seeds}: need at least 1 replicate")
    return [float(np.mean(samples(n, effect, seed + i))) for i in range(seeds)]
'''

NARRATIVE = '''"""The notebook's reading of a run, rendered from its metrics and verdicts (never typed into Markdown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cliplab.core.claims import ClaimResult


def reading(metrics: Mapping[str, float], verdicts: Sequence[ClaimResult]) -> str:
    """Markdown that says what this run measured and what each verdict means."""
    result = next(v for v in verdicts if v.claim.id == "C1")
    n = sum(1 for key in metrics if key.startswith("C1.mean.r"))
    text = (f"* **C1** ({result.status}). Over {n} seeds the mean effect is {metrics['C1.mean']:+.3f}; "
            f"pooled: {result.pooled or 'not scored'}.")
    if result.status == "replicates":
        return text + " The interval over seeds lies above 0 and every seed agrees, as the claim requires."
    return text + f" The run does not show the effect ({result.reason or 'the interval lies at or below 0'})."
'''


def _notebook(paper: str, title: str) -> str:
    return f'''# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: cliplab (.venv)
#     language: python
#     name: cliplab
# ---

# %% [markdown]
# # {title}
#
# **Paper:** (authors, title, venue, arXiv id). Protocol notes: `docs/papers/{paper}.md`; library: `cliplab.{paper}`.
#
# **Claims tested** (see `replications/{paper}/claims.yaml`):
# - **C1** (scaffold) the effect is positive.
#
# **Reproduce:** `cliplab run {paper}` (smoke check: `cliplab run {paper} --smoke`).
#
# **Runtime:** `make bench` measures it on your machine; this run's wall time is printed in the last cell.

# %% tags=["parameters"]
smoke: bool = False  # shrink everything for a fast CI check
seed: int = 0  # first seed; replicate i uses seed + i
seeds: int = 5  # independent replicates the claim is scored over
n: int = 2000  # samples per replicate
effect: float = 0.1  # true mean of the samples (the scaffold's toy effect)
out_dir: str = ""  # where metrics.json and figures/ go; empty means a scratch folder; set by the runner

# %%
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from cliplab import plots
from cliplab.core import paths
from cliplab.core.artifacts import Artifacts
from cliplab.core.claims import check_claims, results_table
from cliplab.{paper} import experiment, narrative

plots.use_style()
art = Artifacts.for_notebook("{paper}", out_dir)
t_start = time.perf_counter()
if smoke:
    n, seeds = 200, 2

# %% [markdown]
# ## 1. The samples
# A histogram of the draws, with their mean.

# %%
values = experiment.samples(n, effect, seed)
art.log_replicates({{"C1.mean": experiment.replicate_means(n, effect, seeds, seed)}})
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(values, bins=40, color="C0", alpha=0.8, label="first seed's samples")
ax.axvline(art.metrics["C1.mean"], color="C3", label="mean over seeds")
ax.set(xlabel="value", ylabel="count", title="samples")
ax.legend()
art.save_figure(fig, "samples")
plt.show()

# %% [markdown]
# ## 2. Verdicts
# Each claim's check in `claims.yaml` is written from the paper's claim and frozen (hash and date) before this
# run; the table scores it over this run's seeds by the rule in `replications/REPORT.md`.

# %%
verdicts = check_claims(paths.claims_path(paths.project_root(), "{paper}"), art.metrics, smoke)
display(results_table(verdicts))
display(Markdown(narrative.reading(art.metrics, verdicts)))

# %%
art.write_metrics()
print(f"wall time {{time.perf_counter() - t_start:.1f}} s")
'''


def _claims(paper: str, title: str) -> str:
    check = "C1.mean > 0"
    return f'''paper: "{title}"
notes: docs/papers/{paper}.md
claims:
  - id: C1
    claim: "(scaffold) The effect is positive."
    paper_value: "> 0 (replace with the paper's number and where it comes from)"
    ours: "mean over seeds {{C1.mean:+.3f}}"
    check: "{check}"
    why: "'positive' = the mean effect over independent seeds lies above 0, by its interval over seeds."
    replicates: {{over: seed, min: 5}}
    frozen: {{date: "{datetime.date.today().isoformat()}", sha256: "{check_hash(check)}"}}
'''


def _test(paper: str) -> str:
    return f'''"""Unit tests of the {paper} package (scaffold): the experiment is seeded and its CI covers its mean."""

from __future__ import annotations

import pytest

from cliplab.core.claims import Claim, ClaimResult
from cliplab.{paper} import experiment, narrative


def test_replicates_are_deterministic_and_independent() -> None:
    first = experiment.replicate_means(300, 0.5, seeds=3, seed=1)
    assert first == experiment.replicate_means(300, 0.5, seeds=3, seed=1) and len(set(first)) == 3


def test_samples_refuse_too_few() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        experiment.samples(0, 0.0, seed=0)


def test_reading_follows_the_verdict() -> None:
    metrics = {{"C1.mean": 0.25, "C1.mean.r0": 0.2, "C1.mean.r1": 0.3}}
    claim = Claim(id="C1", claim="c", paper_value="> 0", ours="", check="C1.mean > 0")
    passed = narrative.reading(metrics, [ClaimResult("{paper}", claim, "replicates", "")])
    failed = narrative.reading(metrics, [ClaimResult("{paper}", claim, "does not replicate", "")])
    assert "+0.250" in passed and "every seed agrees" in passed and "does not show" in failed
'''


def _params_block(params_text: str, paper: str) -> str:
    """params.yaml with ``paper`` appended to ``papers:`` and a block of its own (text edit: keeps comments)."""
    lines = params_text.splitlines()
    start = lines.index("papers:")
    end = start + 1
    while end < len(lines) and lines[end].startswith("  - "):
        end += 1
    lines.insert(end, f"  - {paper}")
    block = ["", f"{paper}:", "  seeds: 5", "  n: 2000", "  effect: 0.1"]
    return "\n".join(lines).rstrip("\n") + "\n" + "\n".join(block) + "\n"


def plan(root: Path, paper: str, title: str | None = None) -> Scaffold:
    """Everything ``new_paper`` writes except dvc.yaml (derived once the package exists), checked."""
    _check_name(root, paper)
    title = title or paper.replace("_", " ").capitalize()
    if '"' in title or "\n" in title:
        raise ScaffoldError("the title may not contain double quotes or line breaks")
    files = {
        f"lib/cliplab/{paper}/__init__.py": _package_init(paper, title),
        f"lib/cliplab/{paper}/experiment.py": EXPERIMENT,
        f"lib/cliplab/{paper}/narrative.py": NARRATIVE,
        f"notebooks/{paper}.py": _notebook(paper, title),
        f"replications/{paper}/claims.yaml": _claims(paper, title),
        f"tests/test_{paper}.py": _test(paper),
        f"docs/papers/{paper}.md": _notes(paper, title),
    }
    return Scaffold(files, _params_block(paths.params_path(root).read_text(), paper))


def _notes(paper: str, title: str) -> str:
    return textwrap.dedent(f"""\
        # {title} — protocol notes

        1. **Question and claims.** (C1, C2, … with the IDs of `replications/{paper}/claims.yaml`.)
        2. **Definitions.** (Exact formulas and default hyperparameters.)
        3. **Protocol.** (What is run, at what scale, and by which module of `cliplab.{paper}`.)
        4. **Reported numbers.** (The paper's numbers, each with where it comes from.)
        5. **Pitfalls of the public reference code.**
        6. **What this replication can and cannot show.**
        """)


def new_paper(root: Path, paper: str, title: str | None = None) -> list[str]:
    """Write the scaffold of ``paper`` into the project at ``root``; returns the paths written or changed."""
    scaffold = plan(root, paper, title)
    for rel, text in scaffold.files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    paths.params_path(root).write_text(scaffold.params_yaml)
    pipeline.write(root)
    return [*scaffold.files, "params.yaml", "dvc.yaml"]


def record_golden(root: Path, paper: str, metrics_json: bytes) -> Path:
    """Keep a first smoke run's metrics as this CPU's golden variant (``tests/golden/README.md``)."""
    target = root / "tests" / "golden" / f"cpu-{numeric_fingerprint()}" / f"{paper}.smoke.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(metrics_json)
    return target
