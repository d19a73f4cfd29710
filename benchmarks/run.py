"""Run every benchmark in this folder, one after another (``make bench``), and write the README's speed table.

Each ``bench_*.py`` prints its own table of measured vs target with ratios (extra arguments are passed on) and
appends its results to ``.cliplab/bench.jsonl``. At the end the results of this run are written into README.md
between the ``bench:begin`` / ``bench:end`` markers, with the CPU they were measured on and the date: the table
there is this command's output, never typed by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from common import REPO, cpu_description  # noqa: E402

BEGIN, END = "<!-- bench:begin (written by `make bench`: benchmarks/run.py) -->", "<!-- bench:end -->"


def _value(row: dict) -> str:
    unit = f" {row['unit']}" if row["unit"] else ""
    return f"{row['measured']:,.2f}{unit}"


def table(rows: list[dict], cpu: str, scripts: list[str], failed: list[str]) -> str:
    """The README block: one line per result of this run, with its target, ratio and whether it holds."""
    lines = [BEGIN, "",
             f"Measured by `make bench` on {time.strftime('%Y-%m-%d', time.gmtime())}, CPU: {cpu}. Ratio ≥ 1 means "
             "the target is met; figures marked *projected* or *composed* are computed from measured parts (see "
             "the benchmark's docstring). Other 2-core machines differ (up to 2× in speed).", ""]
    if failed:
        lines += [f"Benchmarks that failed in this run (no figures): {', '.join(failed)}.", ""]
    lines += ["| benchmark | what | measured | target | ratio | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        sign = "≥" if row["higher_is_better"] else "≤"
        how = "" if row.get("how", "measured") in ("measured", "reported") else f" (*{row['how']}*)"
        if row.get("how") == "reported":
            lines.append(f"| {row['script']} | {row['name']} | {_value(row)} | — | — | — |")
            continue
        met = "yes" if row["ratio"] >= 1 else "**no**"
        lines.append(f"| {row['script']} | {row['name']}{how} | {_value(row)} | {sign} {row['target']:,.2f} | "
                     f"{row['ratio']:.2f}× | {met} |")
    lines += ["", f"Scripts run: {', '.join(scripts)}.", "", END]
    return "\n".join(lines)


def write_readme(block: str, readme: Path = REPO / "README.md") -> bool:
    """Replace the block between the markers; False (README untouched) when the markers are missing."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + block + rest.split(END, 1)[1])
    return True


QUICK_ENV = "CLIPLAB_BENCH_QUICK"


def main() -> int:
    """``make bench``; ``make bench ARGS=--quick`` skips the default-scale end-to-end runs (about an hour)."""
    quick = "--quick" in sys.argv[1:]
    passed = [a for a in sys.argv[1:] if a != "--quick"]
    env = {**os.environ, **({QUICK_ENV: "1"} if quick else {})}
    log = REPO / ".cliplab" / "bench.jsonl"
    start = time.time()
    scripts = sorted(HERE.glob("bench_*.py"))
    failed = []
    for script in scripts:
        print(f"\n### {script.name}", flush=True)
        tic = time.time()
        if subprocess.run([sys.executable, str(script), *passed], check=False, env=env).returncode != 0:
            failed.append(script.name)
        if log.is_file():  # tag this script's new rows with its name
            rows = [json.loads(line) for line in log.read_text().splitlines()]
            for row in rows:
                if row["time"] >= tic and "script" not in row:
                    row["script"] = script.stem.removeprefix("bench_")
            log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    rows = [r for r in rows if r["time"] >= start]
    block = table(rows, cpu_description(), [s.name for s in scripts], failed)
    if quick:
        block = block.replace("\n| benchmark |", "\nQuick run (`--quick`): the default-scale end-to-end timings (each paper, the "
                              "replicates' added cost, a rerun with nothing changed, the first run) were not measured.\n\n"
                              "| benchmark |", 1)
    if write_readme(block):
        print(f"\nREADME.md: speed table rewritten from this run ({len(rows)} results)")
    else:
        print("\nREADME.md has no bench markers; table not written")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
