"""The scoreboard of one real model: every paper's claims scored on that model's runs (``cliplab report --real``).

A real model's runs live in ``replications/real/<slug>/PAPER/`` (``replications/real/smoke/<slug>/`` at smoke
scale), each with the metrics.json and scope.json its notebook wrote. A paper whose notebook takes no ``model``
(it trains its own networks) is listed with every claim "not testable here", saying so.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from cliplab.core import paths
from cliplab.core.claims import NOT_RUN, ClaimResult, check_claims, load_claims, render_real_report
from cliplab.core.runner import declared_parameters
from cliplab.real.scope import Scope, read_scope

REPORT_FILE = "REPORT.md"


def takes_a_model(root: Path, paper: str) -> bool:
    """Does the paper's notebook have a real path (a ``model`` parameter)?"""
    return "model" in declared_parameters(root, paper)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _paper_results(root: Path, paper: str, folder: Path, smoke: bool) -> tuple[list[ClaimResult], Scope | None]:
    claims_file = paths.claims_path(root, paper)
    if not takes_a_model(root, paper):
        _, claims = load_claims(claims_file)
        why = "this paper's experiments train their own networks on synthetic data; it takes no CLIP"
        return check_claims(claims_file, None, smoke, untestable={c.id: why for c in claims if c.check}), None
    metrics_path, scope = folder / "metrics.json", read_scope(folder)
    if not metrics_path.is_file() or scope is None:
        return check_claims(claims_file, None, smoke), None
    metrics = json.loads(metrics_path.read_text())
    return check_claims(claims_file, metrics, smoke, untestable=scope.untestable), scope


def _header(scopes: dict[str, Scope], smoke: bool) -> list[tuple[str, str]]:
    first = next(iter(scopes.values()), None)
    rows = [("model", first.model if first else "(no run)"),
            ("weights", (first.pretrained or "random init (no weights)") if first else ""),
            ("loaded from", first.source if first else ""),
            ("device", ", ".join(sorted({s.device for s in scopes.values()}))),
            ("scale", "smoke" if smoke else "default"),
            ("CPU", _cpu()),
            ("dates", ", ".join(sorted({s.date for s in scopes.values()})))]
    for paper, scope in scopes.items():
        data = "; ".join(f"{k}={v}" for k, v in scope.data.items()) or "(none)"
        sizes = ", ".join(f"{k} {v}" for k, v in scope.sizes.items())
        comp = scope.competence
        competent = (f"top-1 {comp['accuracy']:.3f} vs chance {comp['chance']:.3f} on {comp['n']} images: "
                     f"{'competent' if comp['competent'] else 'NOT competent'}"
                     f"{' (claims scored anyway: score_incompetent=True, a wiring check)' if comp.get('forced') else ''}"
                     ) if comp else "not checked"
        rows.append((paper, (f"data: {data}. Sizes: {sizes}. Replicates: {scope.replicates or 'none'}. "
                             f"Competence: {competent}")))
    return rows


def write_real_report(root: Path, papers: list[str], slug: str, smoke: bool = False) -> tuple[Path, str]:
    """Score every paper on the real model ``slug``'s runs and write its REPORT.md beside them."""
    folder = paths.real_runs_dir(root, slug, smoke)
    if not folder.is_dir():
        raise FileNotFoundError(f"no real-model runs in {folder}; run `cliplab replicate --model ... --data ...` "
                                "or `cliplab run PAPER --set model=...` first")
    results, scopes, over = {}, {}, {}
    for paper in papers:
        checked, scope = _paper_results(root, paper, folder / paper, smoke)
        title = checked[0].paper if checked else paper
        results[title] = checked
        if scope is not None:
            scopes[paper], over[title] = scope, scope.replicates
    if all(r.status == NOT_RUN or r.claim.check is None for rs in results.values() for r in rs) and not scopes:
        raise FileNotFoundError(f"{folder} holds no finished real-model run (no metrics.json with scope.json)")
    text = render_real_report(f"Real-model scoreboard: {slug}", _header(scopes, smoke), results, smoke, over)
    target = folder / REPORT_FILE
    target.write_text(text)
    return target, text
