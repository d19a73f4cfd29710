"""Pull and push versioned artifacts through DVC, failing within seconds when the remote cannot be reached.

DVC itself, given an unreachable remote, can report "Everything is up to date" and then "Checkout failed"
without naming the remote. ``check_reachable`` probes the remote first (a TCP connect with a short timeout for
network remotes, a directory check for local ones) and raises ``RemoteUnreachable`` naming the remote, its URL
and the fix; only then does ``cliplab pull`` / ``cliplab push`` hand over to ``dvc pull`` / ``dvc push``.

DVC's SSH client does not check host keys (sshfs connects with ``known_hosts=None``). For an ``ssh://`` remote
``check_host_key`` fetches the server's host key and requires it in ``~/.ssh/known_hosts`` (OpenSSH's file and
format), so ``cliplab pull`` / ``push`` never talk to a server that merely claims the remote's address.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "s3": 443, "gs": 443, "azure": 443, "webdav": 80,
                 "webdavs": 443}
PROBE_TIMEOUT_S = 3.0


class RemoteUnreachable(RuntimeError):
    """The DVC remote a pull or push would use does not answer, or is not the host it should be."""


@dataclass(frozen=True)
class Remote:
    name: str
    url: str


def resolve_remote(root: Path, name: str | None = None) -> Remote:
    """The remote named ``name``, or the default one, from the project's DVC config (every level merged)."""
    from dvc.config import Config

    config = Config(dvc_dir=str(root / ".dvc"))
    listed = {remote: options["url"] for remote, options in config["remote"].items()}
    chosen = name or config["core"].get("remote")
    if not chosen:
        raise RemoteUnreachable("no DVC remote is configured: add one with `dvc remote add -d NAME URL` "
                                "(README, 'Share results')")
    if chosen not in listed:
        raise RemoteUnreachable(f"remote '{chosen}' is not configured (configured: {', '.join(listed) or 'none'}); "
                                "see `dvc remote list`")
    return Remote(chosen, listed[chosen])


def check_reachable(remote: Remote, timeout: float = PROBE_TIMEOUT_S, push: bool = False) -> None:
    """Raise RemoteUnreachable (name, URL, reason, fix) unless the remote answers within ``timeout`` seconds.

    A local folder must exist to pull from; a push creates it (as DVC does), so only its parent must exist.
    """
    parsed = urlparse(remote.url)
    fix = (f"check the URL and your network (`dvc remote list`), change it with `dvc remote modify {remote.name} "
           "url NEW`, or use another remote with -r NAME")
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # a path (a drive letter counts as one)
        folder = Path(parsed.path if parsed.scheme == "file" else remote.url).expanduser()
        if not (folder.is_dir() or (push and any(p.is_dir() for p in folder.parents))):
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
        reason = f"no answer within {timeout:.0f} s" if isinstance(err, TimeoutError) else (
            err.strerror or str(err))
        raise RemoteUnreachable(f"remote '{remote.name}' ({remote.url}) is unreachable: {reason} at "
                                f"{host}:{port}; {fix}") from None


def known_hosts_file() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


def check_host_key(remote: Remote, timeout: float = PROBE_TIMEOUT_S) -> None:
    """For an ``ssh://`` remote: raise RemoteUnreachable unless the server's host key is in known_hosts."""
    import asyncio

    import asyncssh

    parsed = urlparse(remote.url)
    if parsed.scheme != "ssh" or not parsed.hostname:
        return
    host, port = parsed.hostname, parsed.port or DEFAULT_PORTS["ssh"]
    shown = f"[{host}]:{port}" if port != DEFAULT_PORTS["ssh"] else host
    try:
        key = asyncio.run(asyncio.wait_for(asyncssh.get_server_host_key(host, port), timeout))
    except (OSError, asyncssh.Error, TimeoutError) as err:
        raise RemoteUnreachable(f"remote '{remote.name}' ({remote.url}): no SSH host key from {shown} ({err})") from None
    path = known_hosts_file()
    trusted = asyncssh.match_known_hosts(str(path), host, host, port)[0] if path.is_file() else []
    if key not in trusted:
        raise RemoteUnreachable(
            f"remote '{remote.name}' ({remote.url}): the host key of {shown} is not in {path}, so the server "
            f"cannot be trusted. Check its fingerprint with the server's owner, then add it: "
            f"ssh-keyscan -p {port} {host} >> {path}")
