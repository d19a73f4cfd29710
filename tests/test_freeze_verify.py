"""Frozen checks (hash, date, revisions after a run) and `cliplab verify` (same verdict, metrics in tolerance).

Real git and real files: the freeze command reads the committed claims.yaml through git, as a user's would.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from cliplab.cli import main
from cliplab.core import claims
from cliplab.core.claims import ClaimsError, check_hash, load_claims, write_report
from cliplab.core.freeze import freeze


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def committed(demo_project: Path) -> Path:
    git(demo_project, "init", "-q")
    git(demo_project, "add", "-A")
    git(demo_project, "commit", "-q", "-m", "demo")
    return demo_project


def claims_file(root: Path) -> Path:
    return root / "replications" / "demo" / "claims.yaml"


def test_an_edited_check_refuses_to_load_until_frozen(committed: Path) -> None:
    path = claims_file(committed)
    path.write_text(path.read_text().replace('check: "C1.total > 4"', 'check: "C1.total > 5"'))
    with pytest.raises(ClaimsError, match="changed since it was frozen on 2026-12-03; run `cliplab claims freeze demo"):
        load_claims(path)


def test_a_change_before_any_recorded_result_is_frozen_without_a_revision(committed: Path) -> None:
    path = claims_file(committed)
    path.write_text(path.read_text().replace('check: "C1.total > 4"', 'check: "C1.total > 5"'))
    assert freeze(committed, "demo", today="2026-12-04") == [f"demo C1: frozen {check_hash('C1.total > 5')}"]
    _, loaded = load_claims(path)
    assert loaded[0].frozen_date == "2026-12-04" and loaded[0].revised == ()
    assert 'ours: "{C1.total:.2f}"' in path.read_text()


def test_a_change_after_a_recorded_result_needs_a_reason_and_shows_on_the_scoreboard(committed: Path) -> None:
    (committed / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"demo": {"cmd": "x"}}}))
    (committed / "replications" / "demo" / "metrics.json").write_text(json.dumps({"C1.total": 4.5}))
    path = claims_file(committed)
    path.write_text(path.read_text().replace('check: "C1.total > 4"', 'check: "C1.total > 5"'))
    before = path.read_text()
    with pytest.raises(ClaimsError, match="give --reason"):
        freeze(committed, "demo", today="2026-12-04")
    assert path.read_text() == before
    freeze(committed, "demo", reason="the paper says five", today="2026-12-04")
    again = path.read_text()
    freeze(committed, "demo", reason="the paper says five", today="2026-12-04")
    assert path.read_text() == again  # idempotent while the change is not committed
    _, loaded = load_claims(path)
    (revision,) = loaded[0].revised
    assert (revision.date, revision.reason, revision.before) == ("2026-12-04", "the paper says five", claims.REPLICATES)
    _, text = write_report(committed, ["demo"])
    assert "does not replicate; check revised after a run (2026-12-04)" in text
    assert "| Demo paper | C1 | 2026-12-04 | the paper says five | replicates |" in text


def test_claims_freeze_command(committed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["claims", "freeze", "demo"]) == 0
    assert "demo: every check frozen" in capsys.readouterr().out
    assert main(["claims", "freeze", "nope"]) == 2


def write_metrics(folder: Path, metrics: dict[str, float]) -> None:
    (folder / "demo").mkdir(parents=True, exist_ok=True)
    (folder / "demo" / "metrics.json").write_text(json.dumps(metrics))


def test_verify_same_verdict_within_and_beyond_tolerance(demo_project: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    write_metrics(demo_project / "replications", {"C1.total": 6.0})
    write_metrics(tmp_path / "versioned", {"C1.total": 6.2})
    assert main(["verify", "--against", str(tmp_path / "versioned")]) == 0
    out = capsys.readouterr().out
    assert "demo C1: same verdict (here: replicates; versioned: replicates)" in out and "beyond" not in out
    write_metrics(tmp_path / "versioned", {"C1.total": 9.0})
    assert main(["verify", "--against", str(tmp_path / "versioned")]) == 0
    assert "C1.total: here 6, versioned 9 (beyond tolerance)" in capsys.readouterr().out


def test_verify_exits_non_zero_on_a_verdict_change(demo_project: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_metrics(demo_project / "replications", {"C1.total": 4.1})
    write_metrics(tmp_path / "versioned", {"C1.total": 3.9})
    assert main(["verify", "--against", str(tmp_path / "versioned")]) == 1
    out = capsys.readouterr().out
    assert "CONTRADICTING VERDICT (here: replicates; versioned: does not replicate)" in out
    assert "1 with a different verdict, 1 of them contradicting" in out


def test_verify_names_a_metric_written_on_one_side_only(demo_project: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_metrics(demo_project / "replications", {"C1.total": 6.0, "C1.total.r0": 6.0})
    write_metrics(tmp_path / "versioned", {"C1.total": 6.0})
    main(["verify", "--against", str(tmp_path / "versioned")])
    assert "C1.total.r0: here 6, versioned nan (written on one side only)" in capsys.readouterr().out


@pytest.mark.parametrize("ours, theirs, contradicts", [
    (claims.REPLICATES, claims.FAILS, True), (claims.FAILS, claims.REPLICATES, True),
    (claims.REPLICATES, claims.INCONCLUSIVE, False), (claims.FAILS, claims.INCONCLUSIVE, False),
    (claims.INCONCLUSIVE, claims.INCONCLUSIVE, False)])
def test_only_replicates_against_does_not_replicate_contradicts(ours: str, theirs: str, contradicts: bool) -> None:
    from cliplab.core.verify import ClaimComparison

    row = ClaimComparison("C1", ours, theirs, ())
    assert row.contradicts is contradicts and row.same_verdict is (ours == theirs)
