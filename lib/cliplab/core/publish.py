"""Where a run works and how its outputs replace the previous ones, so that no fault loses them.

Three guarantees, each against a fault of real lab life:
- One run per output folder at a time: ``run_lock`` takes an exclusive ``flock`` on a lock file; a second run
  into the same folder is refused at once with a message naming the first (its pid, start time and command).
  The kernel drops the lock when its holder dies, even by SIGKILL, so a killed run never blocks the next.
- Staging on the destination's filesystem (``staging_dir``), so publishing is renames only: it needs no free
  space and cannot stop half-way for lack of it. What a killed run leaves behind is removed by the next run
  into the same folder (``clear_stale_staging``), which holds the lock and so knows no one else is using it.
- ``publish`` moves the previous outputs aside before moving the new ones in, and puts them back if any step
  fails: the folder holds either every old output or every new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class RunBusy(RuntimeError):
    """Another run is writing the same output folder."""


class PublishFailed(RuntimeError):
    """The new outputs could not be moved in; the previous ones are back in place."""


def _key(paper: str, dest: Path) -> str:
    return f"{paper}-{hashlib.sha256(str(dest.resolve()).encode()).hexdigest()[:10]}"


@contextmanager
def run_lock(state: Path, paper: str, dest: Path) -> Iterator[None]:
    """Hold the lock of ``paper`` writing into ``dest`` for the duration of the block, or raise RunBusy."""
    locks = state / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / f"{_key(paper, dest)}.lock"
    with open(path, "a+") as handle:  # closing it releases the flock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunBusy(f"another run of {paper} is writing {dest} ({holder}); wait for it to finish, or stop "
                          "it, then run again (nothing was touched)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)}")
        handle.flush()
        yield


def _staging_parent(state: Path, dest: Path) -> Path:
    """``state``/staging when it shares ``dest``'s filesystem, else a hidden folder beside ``dest``."""
    base = state / "staging"
    base.mkdir(parents=True, exist_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if os.stat(base).st_dev == os.stat(dest.parent).st_dev:
        return base
    return dest.parent / ".cliplab-staging"


def staging_dir(state: Path, paper: str, dest: Path) -> Path:
    """A new, empty staging folder for one run of ``paper`` into ``dest``, on ``dest``'s filesystem."""
    parent = _staging_parent(state, dest)
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{_key(paper, dest)}-", dir=parent))


def clear_stale_staging(state: Path, paper: str, dest: Path) -> list[Path]:
    """Remove staging folders left by killed runs of ``paper`` into ``dest`` (call while holding its lock)."""
    parent = _staging_parent(state, dest)
    stale = sorted(parent.glob(f"{_key(paper, dest)}-*")) if parent.is_dir() else []
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def publish(staging: Path, dest: Path, names: Sequence[str]) -> None:
    """Replace ``dest``'s ``names`` (files or folders) by ``staging``'s, all or none."""
    dest.mkdir(parents=True, exist_ok=True)
    previous = staging / ".previous"
    previous.mkdir()
    placed: list[str] = []
    try:
        for name in names:
            if (dest / name).exists():
                os.replace(dest / name, previous / name)
        for name in names:
            if (staging / name).exists():
                os.replace(staging / name, dest / name)
                placed.append(name)
    except OSError as err:
        _roll_back(dest, previous, names, placed)
        raise PublishFailed(f"could not move the new outputs into {dest} ({err.strerror or err}); the previous "
                            "outputs are back in place") from err


def _roll_back(dest: Path, previous: Path, names: Sequence[str], placed: Sequence[str]) -> None:
    for name in placed:
        target = dest / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    for name in names:
        if (previous / name).exists():
            os.replace(previous / name, dest / name)
