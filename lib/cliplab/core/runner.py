"""Run one paper's notebook headlessly: validate parameters -> papermill -> publish outputs atomically.

All work happens in a staging folder on the destination's filesystem (``cliplab.core.publish``), under a lock
that refuses a second run into the same folder. Only a run that finishes and writes its metrics is moved into
``replications/PAPER/``, all outputs or none; a failed, killed or disk-full run leaves the previous outputs
exactly as they were and keeps its partial notebook under ``.cliplab/failed`` for inspection.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import yaml

from cliplab.core import paths
from cliplab.core.parameters import Parameter, ParameterError, read_parameters, resolve
from cliplab.core.publish import PublishFailed, RunBusy, clear_stale_staging, publish, run_lock, staging_dir

OUTPUT_FILES = ("executed.ipynb", "params.json", "metrics.json")  # published in this order, metrics last
PROJECT_KERNEL = "cliplab"


class RunFailed(RuntimeError):
    """The notebook did not finish; the message names the cell, the error and the partial notebook."""


PUBLISHED = ("figures", "scope.json", *OUTPUT_FILES)  # scope.json: a real-model run's record
USED_FILE = "params_used.json"
# Appended to the staged notebook: params.json records the values the run used, after any smoke branch.
RECORD_CELL = """# Added by `cliplab run`: record the parameter values this run used (a smoke branch may change them).
import json as _cliplab_json
with open(__import__("os").path.join(out_dir, {used!r}), "w") as _cliplab_fh:
    _cliplab_json.dump({{_k: globals()[_k] for _k in {names!r} if _k in globals()}}, _cliplab_fh, default=str)
"""


@dataclass(frozen=True)
class RunResult:
    paper: str
    out_dir: Path
    parameters: dict[str, Any]
    seconds: float


def load_params_file(root: Path) -> dict[str, Any]:
    """Read params.yaml (the pipeline's parameters), with a clear error if it is malformed."""
    path = paths.params_path(root)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParameterError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("papers"), list):
        raise ParameterError(f"{path} must be a mapping with a 'papers:' list")
    return data


def papers(root: Path) -> list[str]:
    """The registered papers, in params.yaml order."""
    return [str(p) for p in load_params_file(root)["papers"]]


def check_paper(root: Path, paper: str) -> Path:
    """Return the paper's notebook path, or raise ParameterError listing the known papers."""
    known = papers(root)
    if paper not in known:
        raise ParameterError(f"unknown paper '{paper}'. Known papers: {', '.join(known)}")
    notebook = paths.notebook_path(root, paper)
    if not notebook.is_file():
        raise ParameterError(f"paper '{paper}' is registered in params.yaml but {notebook} is missing")
    return notebook


def declared_parameters(root: Path, paper: str) -> dict[str, Parameter]:
    return read_parameters(check_paper(root, paper))


def resolve_run_parameters(
    root: Path, paper: str, overrides: Mapping[str, Any], smoke: bool
) -> dict[str, Any]:
    """Notebook defaults <- params.yaml block <- --set overrides <- --smoke, all validated up front."""
    declared = declared_parameters(root, paper)
    block = load_params_file(root).get(paper) or {}
    if not isinstance(block, dict):
        raise ParameterError(f"params.yaml: the '{paper}' block must be a mapping of parameter: value")
    layers: list[Mapping[str, Any]] = [block, overrides]
    if smoke:
        if "smoke" not in declared:
            raise ParameterError(f"notebook '{paper}' declares no 'smoke: bool' parameter, so --smoke cannot apply")
        layers.append({"smoke": True})
    return resolve(declared, *layers)


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return PROJECT_KERNEL if PROJECT_KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")


def _describe_failure(err: BaseException) -> str:
    """One line: which cell, which error (the full traceback is in the kept notebook)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        source = _first_line(err.source)[:60]
        return f"cell {err.exec_count} ({source!r}) raised {err.ename}: {_first_line(err.evalue)}"
    name = type(err).__name__
    if name == "DeadKernelError":
        return f"the kernel died ({_first_line(err)}); it may have run out of memory"
    if name in {"CellTimeoutError", "TimeoutError"}:
        return f"a cell ran past the timeout ({_first_line(err)})"
    return f"{name}: {_first_line(err)}"


def _keep_aside(root: Path, staging: Path, paper: str) -> Path | None:
    partial = staging / "executed.ipynb"
    if not partial.exists():
        return None
    target_dir = paths.failed_dir(root)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{paper}-{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
    shutil.move(str(partial), target)
    return target


def default_destination(root: Path, paper: str, values: Mapping[str, Any]) -> Path:
    """The zoo's versioned outputs, or, for a real model (``model`` set), that model's own folder: a real-model
    run never replaces the zoo's results."""
    smoke = bool(values.get("smoke", False))
    if str(values.get("model", "")).strip():
        slug = paths.model_slug(str(values["model"]), str(values.get("pretrained", "")))
        return paths.real_runs_dir(root, slug, smoke) / paper
    return paths.replication_dir(root, paper, smoke=smoke)


def run_paper(
    paper: str,
    *,
    smoke: bool = False,
    overrides: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    out: Path | None = None,
    root: Path | None = None,
    log_output: bool = False,
    progress: bool = True,
) -> RunResult:
    """Execute ``notebooks/PAPER.py`` with validated parameters and publish its outputs.

    Raises ParameterError (before any work, nothing touched) or RunFailed (previous outputs intact).
    """
    root = root or paths.project_root()
    notebook = check_paper(root, paper)
    values = resolve_run_parameters(root, paper, overrides or {}, smoke)
    if timeout is not None and timeout <= 0:
        raise ParameterError(f"--timeout must be a positive number of seconds, got {timeout}")
    dest = out or default_destination(root, paper, values)

    state = paths.state_dir(root)
    try:
        with run_lock(state, paper, dest):
            for folder in clear_stale_staging(state, paper, dest):
                print(f"{paper}: removed {folder}, left by an interrupted run")
            return _execute(root, paper, notebook, values, dest, staging_dir(state, paper, dest), timeout,
                            progress, log_output)
    except (RunBusy, PublishFailed) as err:
        raise RunFailed(f"{paper}: {err}") from None
    except OSError as err:  # e.g. no space left while writing the staging folder: dest is untouched
        raise RunFailed(f"{paper} failed: {err.strerror or err} ({err.filename or 'writing outputs'}); the previous "
                        f"outputs in {dest} are untouched") from None


class _AbandonedKernelTasks(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for the kernel client's tasks that a Ctrl-C left
    behind: their DeadKernelError is the interrupt itself, already reported in one line, not a second failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        return type(err).__name__ != "DeadKernelError"


def _silence_abandoned_kernel_tasks() -> None:
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _AbandonedKernelTasks) for f in log.filters):
        log.addFilter(_AbandonedKernelTasks())


@contextmanager
def _interrupts_noted() -> Iterator[list[int]]:
    """Note every SIGINT while the block runs (and raise KeyboardInterrupt as usual), so that an interrupt that
    papermill or the kernel client swallows still stops the run before it publishes anything."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return

    def handler(signum: int, frame: Any) -> None:
        noted.append(signum)
        _silence_abandoned_kernel_tasks()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)


def _execute(root: Path, paper: str, notebook: Path, values: dict[str, Any], dest: Path, staging: Path,
             timeout: float | None, progress: bool, log_output: bool) -> RunResult:
    """Run the notebook in ``staging`` and publish its outputs into ``dest``; the staging folder never stays."""
    import papermill

    start = time.perf_counter()
    try:
        source = staging / "source.ipynb"
        kernel = _kernel_name()
        nb = jupytext.read(notebook)
        nb.metadata["kernelspec"] = {"name": kernel, "language": "python", "display_name": kernel}
        nb.metadata.setdefault("language_info", {"name": "python"})
        record = RECORD_CELL.format(used=USED_FILE, names=sorted(set(values) - {"out_dir"}))  # staging: not a value
        nb.cells.append(nbformat.v4.new_code_cell(record, metadata={"tags": ["cliplab-record-parameters"]}))
        jupytext.write(nb, source)
        with _interrupts_noted() as interrupts:
            try:
                papermill.execute_notebook(
                    str(source),
                    str(staging / "executed.ipynb"),
                    parameters={**values, "out_dir": str(staging)},
                    kernel_name=kernel,
                    cwd=str(root),
                    progress_bar=progress,
                    log_output=log_output,
                    execution_timeout=timeout,
                    # the kernel's own log (transport warnings; a ZMQ traceback when Ctrl-C closes its sockets
                    # mid-reply) is not the notebook's output: cell errors still arrive as outputs and end the run
                    extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                )
            except Exception as err:  # papermill, nbclient and kernel errors all end the run the same way
                if interrupts:  # the kernel's KeyboardInterrupt (Ctrl-C reaches the whole process group)
                    raise KeyboardInterrupt from None
                kept = _keep_aside(root, staging, paper)
                where = f"; partial notebook kept at {kept}" if kept else ""
                raise RunFailed(f"{paper} failed: {_describe_failure(err)}{where}") from None
        if interrupts:  # an interrupt papermill swallowed: stop before publishing, as for any other
            raise KeyboardInterrupt
        if not (staging / "metrics.json").is_file():
            kept = _keep_aside(root, staging, paper)
            raise RunFailed(f"{paper} finished but wrote no metrics.json (call art.write_metrics()); notebook at {kept}")
        used = staging / USED_FILE
        recorded = {**values, **json.loads(used.read_text())} if used.is_file() else values
        used.unlink(missing_ok=True)
        (staging / "params.json").write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        publish(staging, dest, PUBLISHED)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RunResult(paper, dest, values, time.perf_counter() - start)
