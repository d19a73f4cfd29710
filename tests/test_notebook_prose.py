"""Notebook Markdown never types in a result or a runtime: what describes this run is rendered from its
metrics in a code cell, so a run on another machine or seed never contradicts the text above its output.

A Markdown cell may state settings (``16 px``, ``width 128``), counts of the design and the paper's own numbers
(attributed: "the paper's 0.961", "card: ..."); it may not state an approximate value ("≈ 0.75", "about 155 s"),
a signed statistic ("+0.2", "−0.66"), a statistic set equal to a number ("τ = −0.6", "ρ ≈ 0.02") or a runtime.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

from cliplab.core.runner import papers

REPO = Path(__file__).resolve().parents[1]

NUMBER = r"[−+-]?\d+(?:[.,]\d+)*"
RESULT_PATTERNS: dict[str, str] = {
    "approximate value": rf"(?:[≈~]|\babout|\baround|\broughly|\bnearly)\s*\(?{NUMBER}",
    "signed statistic": r"(?<![\w.<>≤≥])(?<![<>≤≥] )[−+]\d*\.\d+",
    "statistic equal to a number": rf"(?:τ|ρ|\br|\bCAB|\bslope|\baccuracy|\berror|\bTwo\\?\*?|\bSingle)\s*[=≈]\s*{NUMBER}",
    "runtime": rf"{NUMBER}\s*(?:s|sec|seconds?|min|minutes?|h|hours?)\b(?!\w)",
    "percentage of a result": rf"{NUMBER}\s*%\s+of\s+(?:the\s+)?(?:runs|seeds|models|definitions)",
}
ATTRIBUTION = re.compile(r"paper|card|authors|released", re.IGNORECASE)  # the source's numbers, not this run's


def result_like_numbers(markdown: str) -> list[str]:
    """The result-like numbers of one Markdown text, each as 'kind: …context…'."""
    text = re.sub(r"`[^`]*`", "`code`", markdown)  # commands and code are not prose
    found = []
    for kind, pattern in RESULT_PATTERNS.items():
        for match in re.finditer(pattern, text):
            before = text[max(0, match.start() - 40): match.start()]
            if ATTRIBUTION.search(before):
                continue
            found.append(f"{kind}: …{text[max(0, match.start() - 30): match.end() + 10].strip()}…")
    return found


def test_the_detector_flags_typed_results_and_passes_settings_and_paper_numbers() -> None:
    for typed in ("mean τ ≈ −0.66 with OOD accuracy", "Our CAB (≈ 0.75) is low", "at default scale ρ = +0.2",
                  "about 155 s at default scale", "takes 12 min", "shifted by +0.006", "Single ≈ 0.98 alone",
                  "an audit found ρ ≈ 0.02 there", "the slope ≈ 7 has a CI", "the check gave ρ = −0.6"):
        assert result_like_numbers(typed), typed
    for fine in ("16 px world images, width 128, 5 ascent steps", "below the paper's 0.961 for CLIP",
                 "the card's table: −1.000, −1.000, −0.938", "arXiv 2310.16228 (ICLR 2024)",
                 "run `cliplab run x --set epochs=4 --timeout 600`", "ρ_s ∈ {0.6, 0.7}", "card §5 #3",
                 "the check asks for ρ ≤ −0.7 over five heads", "a pull toward the other colour (CAB > 0.5)"):
        assert not result_like_numbers(fine), fine


@pytest.mark.parametrize("paper", papers(REPO))
def test_notebook_markdown_states_no_result_or_runtime(paper: str) -> None:
    nb = jupytext.read(REPO / "notebooks" / f"{paper}.py")
    typed = [f"cell {i}: {hit}" for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
             for hit in result_like_numbers(cell.source)]
    assert not typed, (f"{paper}: render these from the run's metrics in a code cell instead of typing them "
                       "into Markdown:\n" + "\n".join(typed))
