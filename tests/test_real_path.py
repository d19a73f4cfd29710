"""Your own model and data, end to end and offline: real open_clip architectures at random init (ViT-B-32,
RN50), from a weights file and a ``local-dir:`` folder, on the shipped photograph sample (scikit-image's
bundled photos), through ``cliplab replicate --model … --data …`` and ``cliplab run``, into a per-model
scoreboard. Each run goes into a scratch project (``CLIPLAB_ROOT``), so the clone's own outputs are untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cliplab.core.claims import load_claims
from cliplab.core.workspace import bare_project
from cliplab.real.sample import write_real_sample

REPO = Path(__file__).resolve().parents[1]
PAPERS = ("shortcut_learning", "concept_frequency", "sharpness", "concept_association_bias")
CLIP_PAPERS = PAPERS[1:]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sample, small: 8 images per class (4 held out), 64 px photos (the model resizes to 224)."""
    return write_real_sample(tmp_path_factory.mktemp("real") / "sample", per_class=8, size=64)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A scratch project: the clone's parameters, notebooks and claims, nothing else (no zoo, no outputs)."""
    return bare_project(REPO, tmp_path / "project")


def cliplab(root: Path, *args: str, timeout: float = 1800, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "CLIPLAB_ROOT": str(root), "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, "-m", "cliplab.cli", *args], cwd=root, env=environ, text=True,
                          capture_output=True, timeout=timeout, check=False)


def scoreboard(root: Path, slug: str) -> str:
    return (root / "replications" / "real" / "smoke" / slug / "REPORT.md").read_text()


@pytest.mark.slow
def test_replicate_on_vit_b_32_writes_a_scored_model_report(project: Path, sample: Path) -> None:
    """The issue's done-when: every CLIP paper on a random-init ViT-B-32, the sample, one model scoreboard in which
    every claim has a status, and those the model cannot support say why (a random model is not competent)."""
    started = time.perf_counter()
    done = cliplab(project, "replicate", "--smoke", "--model", "ViT-B-32", "--data", str(sample))
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"ViT-B-32 smoke replicate on CPU: {time.perf_counter() - started:.0f} s")
    report = scoreboard(project, "ViT-B-32__random-init")
    assert "| model | ViT-B-32 |" in report and "random init (no weights)" in report
    for paper in CLIP_PAPERS:
        out = project / "replications" / "real" / "smoke" / "ViT-B-32__random-init" / paper
        scope = json.loads((out / "scope.json").read_text())
        assert scope["model"] == "ViT-B-32" and scope["sizes"] and scope["competence"]["n"] > 0
        assert not scope["competence"]["competent"]  # random weights: top-1 is not above chance by the margin
        assert (out / "executed.ipynb").is_file()
        if paper != "concept_frequency":  # frequency fits (and plots) nothing on a model that is not competent
            assert any((out / "figures").glob("*.png"))
    for paper in PAPERS:
        title, claims = load_claims(project / "replications" / paper / "claims.yaml")
        for claim in claims:
            row = next(line for line in report.splitlines() if line.startswith(f"| {title} | **{claim.id}**"))
            assert row.rstrip().endswith("|") and ("not testable here" in row or "inconclusive" in row
                                                   or "replicates" in row)
    assert report.count("not competent on this task") >= 5  # frequency C1 C3 C5 C7, sharpness B-*, CAB C1
    assert "takes no CLIP" in report  # shortcut learning: listed, with its reason
    assert not (project / "replications" / "concept_frequency" / "metrics.json").exists()  # zoo outputs untouched


@pytest.mark.slow
@pytest.mark.parametrize("source", ["RN50", "weights-file", "local-dir"])
def test_one_paper_on_other_model_sources(source: str, project: Path, sample: Path, tmp_path: Path) -> None:
    """RN50 at random init, and ViT-B-32 from a saved weights file and from a local-dir: folder, each through
    the concept-association notebook (the fastest real path) into its own model folder."""
    from safetensors.torch import save_file

    from cliplab.models import load_model, save_checkpoint

    model, pretrained = {"RN50": ("RN50", ""), "weights-file": ("ViT-B-32", ""), "local-dir": ("", "")}[source]
    if source == "weights-file":
        weights = tmp_path / "vit.safetensors"
        state = load_model("ViT-B-32", seed=1).model.state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
        pretrained = str(weights)
    if source == "local-dir":
        model = "local-dir:" + str(save_checkpoint(load_model("ViT-B-32", seed=2).model, "ViT-B-32", tmp_path / "m"))
    args = ["run", "concept_association_bias", "--smoke", "--model", model, "--data", str(sample)]
    done = cliplab(project, *args, *(["--pretrained", pretrained] if pretrained else []))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((project / "replications" / "real" / "smoke").glob("*/concept_association_bias/scope.json"))
    assert len(runs) == 1
    scope = json.loads(runs[0].read_text())
    assert scope["sizes"]["photos"] > 0 and {"C2", "C4"} <= set(scope["untestable"])
    assert cliplab(project, "report", "--smoke", "--real", runs[0].parent.parent.name).returncode == 0


def test_missing_weights_offline_fail_within_seconds_naming_the_fix(project: Path, sample: Path,
                                                                    tmp_path: Path) -> None:
    """An uncached pretrained tag with the hub off: exit 2 at once, the message names the fixes, nothing written."""
    started = time.perf_counter()
    done = cliplab(project, "replicate", "--smoke", "--model", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k",
                   "--data", str(sample), timeout=120, HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf"))
    assert time.perf_counter() - started < 60
    assert done.returncode == 2, done.stderr
    assert "not available" in done.stderr and "local-dir:" in done.stderr and "HF_HUB_OFFLINE" in done.stderr
    assert not (project / "replications" / "real").exists()


@pytest.mark.parametrize("args, expected", [
    (["--data", "/no/such/folder"], "no such folder"),
    (["--model", "ViT-B-33"], "Did you mean"),
    (["--device", "tpu"], "device must be one of"),
])
def test_bad_real_options_fail_before_any_work(args: list[str], expected: str, project: Path, sample: Path) -> None:
    base = {"--model": "ViT-B-32", "--data": str(sample)}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    done = cliplab(project, "replicate", "--smoke", *[x for kv in base.items() for x in kv], timeout=120)
    assert done.returncode == 2 and expected in done.stderr, done.stderr
    assert not (project / "replications" / "real").exists()


def test_real_flags_are_refused_by_a_paper_without_a_clip(project: Path, sample: Path) -> None:
    done = cliplab(project, "run", "shortcut_learning", "--smoke", "--model", "ViT-B-32", timeout=120)
    assert done.returncode == 2 and "takes no CLIP" in done.stderr


def test_every_clip_notebook_names_the_real_options_alike() -> None:
    """The same parameter names (and types) in every CLIP notebook's parameters cell, as `cliplab list` shows."""
    from cliplab.core.runner import declared_parameters

    shared = {"model": "str", "pretrained": "str", "device": "str", "batch_size": "int", "score_incompetent": "bool"}
    data = {"concept_frequency": {"images", "ood_images", "corpus", "caption_column"},
            "sharpness": {"images", "test_images", "ood_images"},
            "concept_association_bias": {"colour_images"}}
    for paper, options in data.items():
        declared = declared_parameters(REPO, paper)
        assert {k: declared[k].type for k in shared} == shared, paper
        assert options <= set(declared), paper
        legacy = {"real_model", "real_pretrained", "photo_dir", "real_corpus", "real_images", "clip_pretrained",
                  "train_dir", "test_dir", "ood_dirs"}
        assert not legacy & set(declared), paper
