"""`cliplab reseed`: a second run of the pipeline with every source of randomness moved, all else equal."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from cliplab.cli import main
from cliplab.core.paths import project_root
from cliplab.core.reseed import model_renames, reseed_params

PARAMS = {
    "papers": ["a", "b"],
    "a": {"seed": 0, "seeds": 5, "image_seeds": 3, "probe_seed": 2, "ft_seeds": [0, 1, 2], "lr": 0.01,
          "models": ["tiny-s0", "tiny-s1"], "primary": "tiny-s0", "pair": ["tiny-c15k-s0", "tiny-s0"],
          "depths": [1, 2, 3], "flag": True, "template": "tiny-s0 in words"},
    "b": {"nested": {"seed": 7}, "vqa_seeds": [3, 4]},
    "world": {"max_objects": 2, "seed": 0},
    "zoo": {"jobs": 2, "models": [{"name": "tiny-s0", "arch": "t", "seed": 0},
                                  {"name": "tiny-s1", "arch": "t", "seed": 1},
                                  {"name": "tiny-c15k-s0", "arch": "t", "seed": 0}]},
}


def test_every_seed_moves_and_every_count_and_setting_stays() -> None:
    out = reseed_params(PARAMS, 10)
    a = out["a"]
    assert (a["seed"], a["probe_seed"], a["ft_seeds"]) == (10, 12, [10, 11, 12])
    assert (a["seeds"], a["image_seeds"], a["lr"], a["depths"], a["flag"]) == (5, 3, 0.01, [1, 2, 3], True)
    assert out["b"] == {"nested": {"seed": 17}, "vqa_seeds": [13, 14]}
    assert out["world"] == PARAMS["world"]  # not a paper block: each model's seed is its world's
    assert out["papers"] == ["a", "b"]


def test_zoo_models_are_renamed_with_their_seed_and_papers_follow() -> None:
    out = reseed_params(PARAMS, 10)
    assert [(m["name"], m["seed"]) for m in out["zoo"]["models"]] == [
        ("tiny-s10", 10), ("tiny-s11", 11), ("tiny-c15k-s10", 10)]
    assert out["a"]["models"] == ["tiny-s10", "tiny-s11"]
    assert (out["a"]["primary"], out["a"]["pair"]) == ("tiny-s10", ["tiny-c15k-s10", "tiny-s10"])
    assert out["a"]["template"] == "tiny-s0 in words"  # only whole model names are renamed
    assert PARAMS["zoo"]["models"][0]["name"] == "tiny-s0"  # the input is not modified


@pytest.mark.parametrize("offset, message", [(0, "positive"), (1, "existing ones")])
def test_bad_offsets_are_refused(offset: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reseed_params(PARAMS, offset)


def test_a_model_whose_name_does_not_carry_its_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="does not end in -s<its seed>"):
        model_renames({"models": [{"name": "tiny-s0", "seed": 3}]}, 10)


def test_the_project_params_reseed_into_a_consistent_zoo() -> None:
    """Every zoo model a paper names in the real params.yaml exists in the reseeded zoo."""
    params = yaml.safe_load((project_root(Path(__file__).parent) / "params.yaml").read_text())
    out = reseed_params(params, 10)
    zoo = {m["name"] for m in out["zoo"]["models"]}
    old = {m["name"] for m in params["zoo"]["models"]}

    def names(value: object) -> set[str]:
        if isinstance(value, str):
            return {value}
        if isinstance(value, list):
            return set().union(*map(names, value)) if value else set()
        if isinstance(value, dict):
            return set().union(*map(names, value.values())) if value else set()
        return set()

    for paper in params["papers"]:
        assert not names(out[paper]) & old, paper
        named = names(params[paper]) & old
        assert {model_renames(params["zoo"], 10)[n] for n in named} <= names(out[paper]) & zoo, paper


def commit_with_params(root: Path, extra: str) -> None:
    """Append ``extra`` to the demo project's params.yaml and commit the project."""
    (root / "params.yaml").write_text((root / "params.yaml").read_text() + extra)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "demo"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env)


def test_reseed_command_clones_the_committed_project(demo_project: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    commit_with_params(demo_project, "  seed: 1\nzoo:\n  models: [{name: m-s0, seed: 0}]\n")
    target = tmp_path / "second"
    assert main(["reseed", "100", str(target)]) == 0
    out = yaml.safe_load((target / "params.yaml").read_text())
    assert out["demo"] == {"n": 3, "seed": 101}
    assert out["zoo"]["models"] == [{"name": "m-s100", "seed": 100}]
    assert (target / "notebooks" / "demo.py").read_text() == (demo_project / "notebooks" / "demo.py").read_text()
    assert any((target / "data").rglob("*.png"))
    assert "cliplab verify --against" in capsys.readouterr().out


def test_reseed_refuses_a_dirty_tree_or_a_used_folder(demo_project: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    commit_with_params(demo_project, "zoo:\n  models: []\n")
    params = demo_project / "params.yaml"
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert main(["reseed", "10", str(used)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    params.write_text(params.read_text() + "# edited\n")
    assert main(["reseed", "10", str(tmp_path / "fresh")]) == 2
    assert "uncommitted changes" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists()
