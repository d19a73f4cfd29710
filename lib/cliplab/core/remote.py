"""Pull and push versioned artifacts through DVC, failing within seconds when the remote cannot be reached.

DVC itself, given an unreachable remote, can report "Everything is up to date" and then "Checkout failed"
without naming the remote. ``check_reachable`` probes the remote first (a TCP connect with a short timeout for
network remotes, a directory check for local ones) and raises ``RemoteUnreachable`` naming the remote, its URL
and the fix; only then does ``cliplab pull`` / ``cliplab push`` hand over to ``dvc pull`` / ``dvc push``.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "s3": 443, "gs": 443, "azure": 443, "webdav": 80,
                 "webdavs": 443}
PROBE_TIMEOUT_S = 3.0


class RemoteUnreachable(RuntimeError):
    """The DVC remote a pull or push would use does not answer."""


@dataclass(frozen=True)
class Remote:
    name: str
    url: str


def _dvc_config(dvc: str, root: Path, *args: str) -> str:
    proc = subprocess.run([dvc, *args], cwd=root, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def resolve_remote(dvc: str, root: Path, name: str | None = None) -> Remote:
    """The remote named ``name``, or the default one, from the project's DVC config (all levels)."""
    listed = dict(line.split(maxsplit=1) for line in _dvc_config(dvc, root, "remote", "list").splitlines()
                  if len(line.split(maxsplit=1)) == 2)
    chosen = name or _dvc_config(dvc, root, "remote", "default")
    if not chosen:
        raise RemoteUnreachable("no DVC remote is configured: add one with `dvc remote add -d NAME URL` "
                                "(README, 'Pull artifacts instead of recomputing')")
    if chosen not in listed:
        raise RemoteUnreachable(f"remote '{chosen}' is not configured (configured: {', '.join(listed) or 'none'}); "
                                "see `dvc remote list`")
    return Remote(chosen, listed[chosen])


def check_reachable(remote: Remote, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise RemoteUnreachable (name, URL, reason, fix) unless the remote answers within ``timeout`` seconds."""
    parsed = urlparse(remote.url)
    fix = (f"check the URL and your network (`dvc remote list`), change it with `dvc remote modify {remote.name} "
           "url NEW`, or use another remote with -r NAME")
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # a path (a drive letter counts as one)
        folder = Path(parsed.path if parsed.scheme == "file" else remote.url)
        if not folder.is_dir():
            raise RemoteUnreachable(f"remote '{remote.name}' ({remote.url}) is unreachable: no such folder; mount "
                                    f"it or create it, or {fix}")
        return
    host, port = parsed.hostname, parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    if not host or port is None:
        return  # a scheme we cannot probe: let DVC try
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        reason = "no answer within {:.0f} s".format(timeout) if isinstance(err, TimeoutError) else (
            err.strerror or str(err))
        raise RemoteUnreachable(f"remote '{remote.name}' ({remote.url}) is unreachable: {reason} at "
                                f"{host}:{port}; {fix}") from None
