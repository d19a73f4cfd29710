"""Shared reporting for benchmarks: every target is printed as measured vs target and their ratio.

A ratio ≥ 1 means the target is met (headroom ×ratio), whether the target is a time (lower is better) or a
throughput (higher is better).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def cpu_description() -> str:
    """The CPU every figure belongs to: model name, family/model, the vector ISA torch picks from, core count."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    flags = set(fields.get("flags", "").split())
    isa = "AMX" if "amx_tile" in flags else "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return (f"{fields.get('model name', 'unknown CPU')} (family {fields.get('cpu family', '?')}, model "
            f"{fields.get('model', '?')}, {isa}), {os.cpu_count()} cores")


@dataclass(frozen=True)
class Result:
    name: str
    measured: float
    target: float
    unit: str
    higher_is_better: bool = False
    how: str = "measured"  # or "projected" / "composed", or "reported" (a figure with no target)

    @property
    def ratio(self) -> float:
        if self.how == "reported" or self.target == 0:
            return float("nan")
        if self.higher_is_better:
            return self.measured / self.target
        return self.target / self.measured if self.measured > 0 else float("inf")

    @property
    def met(self) -> bool:
        return self.ratio >= 1.0


def print_results(title: str, results: list[Result]) -> None:
    """Print one table and append the results to .cliplab/bench.jsonl."""
    width = max(len(r.name) for r in results)
    cpu = cpu_description()
    print(f"\n== {title} (CPU: {cpu})")
    print(f"{'benchmark':<{width}}  {'measured':>12}  {'target':>12}  {'ratio':>7}  met")
    for r in results:
        sign = "≥" if r.higher_is_better else "≤"
        how = "" if r.how == "measured" else f"  ({r.how})"
        if r.how == "reported":
            print(f"{r.name:<{width}}  {r.measured:>10.2f} {r.unit:<1}  {'—':>12}  {'—':>7}  —{how}")
            continue
        print(f"{r.name:<{width}}  {r.measured:>10.2f} {r.unit:<1}  {sign}{r.target:>9.2f} {r.unit:<1}  "
              f"{r.ratio:>6.2f}×  {'yes' if r.met else 'NO'}{how}")
    log = REPO / ".cliplab" / "bench.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        for r in results:
            fh.write(json.dumps({"title": title, **asdict(r), "ratio": r.ratio, "cpu": cpu, "time": time.time()}) + "\n")


def env_with_venv() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLIPLAB_ROOT"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def timed(cmd: list[str], cwd: Path) -> float:
    """Wall seconds of a command; raises with its output if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env_with_venv(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds
