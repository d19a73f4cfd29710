"""Artifacts travel: smoke `dvc repro` -> push -> fresh `git clone` -> pull -> identical files, no stage reruns.

Runs the real pipeline (smoke scale) once on a copy of the tracked project in a temporary directory, then moves
its artifacts through three real remotes on loopback: a local folder, an OpenSSH server (a generated key, host
key checked against a known_hosts file) and, read-only, an HTTP server serving that folder. The steps are the
README's "Share results" section, run by `cliplab push` / `cliplab pull`; nothing in the working tree or the
user's cache is touched.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=cliplab-test", "-c", "user.email=test@cliplab.invalid", "-c", "init.defaultBranch=main"]
TARGETS = ["data.dvc", "smoke-report"]  # with their upstream stages: `cliplab push/pull` add --with-deps
FOLDERS = ["data", "zoo-smoke", "replications/smoke"]


def _env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLIPLAB_ROOT"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if home is not None:
        env["HOME"] = str(home)
    return env


def _sh(cmd: list[str], cwd: Path, home: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(home), capture_output=True, text=True)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _hashes(root: Path, folders: list[str]) -> dict[str, str]:
    out = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and ".gitignore" not in path.name:
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of the project whose smoke pipeline has run (its outputs in its DVC cache)."""
    work = tmp_path_factory.mktemp("roundtrip") / "work"
    for rel in _sh(["git", "ls-files"], REPO).stdout.splitlines():
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    _sh([*GIT, "init", "-q"], work)
    _sh([str(BIN / "cliplab"), "sample-data", "data"], work)
    committed = (work / "data.dvc").read_text()
    _sh([str(BIN / "dvc"), "add", "-q", "data"], work)
    assert (work / "data.dvc").read_text() == committed, "regenerated sample data differs from data.dvc"
    _sh([str(BIN / "dvc"), "repro", "smoke-report"], work)
    _sh([*GIT, "add", "-A"], work)
    _sh([*GIT, "commit", "-q", "-m", "smoke run"], work)
    return work


def _share(work: Path, url: str, home: Path, local: dict[str, str] | None = None) -> None:
    """README 'Share results', producer side: add the remote, commit its config, keep credentials local."""
    dvc = str(BIN / "dvc")
    (work / ".dvc" / "config.local").unlink(missing_ok=True)  # an earlier test's credentials for its 'lab'
    _sh([dvc, "remote", "add", "-f", "-d", "lab", url], work)
    for key, value in (local or {}).items():
        _sh([dvc, "remote", "modify", "--local", "lab", key, value], work)
    _sh([*GIT, "add", ".dvc/config"], work)
    _sh([*GIT, "commit", "-q", "-m", "share results through lab"], work)
    assert ".dvc/config.local" not in _sh(["git", "ls-files"], work).stdout, "credentials must stay out of git"


def _fetch(work: Path, clone: Path, home: Path, local: dict[str, str] | None = None) -> None:
    """README 'Share results', consumer side: clone, set local credentials, pull; then check what arrived."""
    _sh([*GIT, "clone", "-q", str(work), str(clone)], clone.parent)
    for key, value in (local or {}).items():
        _sh([str(BIN / "dvc"), "remote", "modify", "--local", "lab", key, value], clone)
    _sh([str(BIN / "cliplab"), "pull", *TARGETS], clone, home)
    assert _hashes(clone, FOLDERS) == _hashes(work, FOLDERS)
    status = _sh([str(BIN / "dvc"), "status", *TARGETS, "--with-deps"], clone).stdout
    assert "up to date" in status, status
    (clone / ".venv").symlink_to(REPO / ".venv")
    (clone / ".cliplab").mkdir(exist_ok=True)
    (clone / ".cliplab" / "data.stamp").touch()  # data/ arrived by the pull above
    rerun = _sh(["make", "-o", ".venv/.cliplab-installed", "smoke"], clone, home)  # the shared venv stays as it is
    assert "Running stage" not in rerun.stdout, rerun.stdout  # nothing recomputed: every stage is pulled


def test_round_trip_through_a_local_folder(produced: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _share(produced, str(tmp_path / "remote"), home)
    _sh([str(BIN / "cliplab"), "push", *TARGETS], produced, home)
    _fetch(produced, tmp_path / "clone", home)


@dataclass(frozen=True)
class SSHServer:
    port: int
    key: Path  # the client's private key
    host_key_line: str  # the known_hosts entry of the server


def _install_openssh() -> None:
    if shutil.which("sshd") or Path("/usr/sbin/sshd").exists():
        return
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server"]
    proc = subprocess.run(install, capture_output=True, text=True)
    if proc.returncode != 0:  # a fresh container has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True)
        proc = subprocess.run(install, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"OpenSSH server not installed and apt-get failed: {proc.stderr.strip()[-300:]}")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SSHServer]:
    """OpenSSH's sshd on 127.0.0.1 with a generated host key and one authorised client key."""
    _install_openssh()
    base = tmp_path / "sshd"
    base.mkdir()
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / name)], check=True)
    (base / "authorized_keys").write_text((base / "user_key.pub").read_text())
    port = _free_port()
    (base / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {base / 'host_key'}",
        f"AuthorizedKeysFile {base / 'authorized_keys'}", f"PidFile {base / 'sshd.pid'}", "StrictModes no",
        "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    server = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(base / "sshd_config")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if server.poll() is not None:
            pytest.skip(f"sshd did not start: {server.stdout.read()[-300:]}")
        host_key = " ".join((base / "host_key.pub").read_text().split()[:2])
        yield SSHServer(port, base / "user_key", f"[127.0.0.1]:{port} {host_key}\n")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_round_trip_through_ssh_with_the_host_key_checked(produced: Path, sshd: SSHServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    known_hosts = home / ".ssh" / "known_hosts"
    url = f"ssh://root@127.0.0.1:{sshd.port}{tmp_path / 'remote'}"
    credentials = {"keyfile": str(sshd.key)}
    _share(produced, url, home, credentials)

    refused = _sh([str(BIN / "cliplab"), "push", *TARGETS], produced, home, ok=False)
    assert refused.returncode == 1 and "is not in" in refused.stderr and "ssh-keyscan" in refused.stderr
    assert not (tmp_path / "remote").exists(), "nothing is sent to an untrusted host"
    known_hosts.write_text(sshd.host_key_line)
    _sh([str(BIN / "cliplab"), "push", *TARGETS], produced, home)
    _fetch(produced, tmp_path / "clone", home, credentials)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_read_only_pull_over_http(produced: Path, tmp_path: Path) -> None:
    """A remote folder published by a plain HTTP server: clones pull from it (DVC's HTTP remote, no extra)."""
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "published"
    _share(produced, str(folder), home)
    _sh([str(BIN / "cliplab"), "push", *TARGETS], produced, home)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _share(produced, f"http://127.0.0.1:{server.server_address[1]}", home)
        _fetch(produced, tmp_path / "clone", home)
    finally:
        server.shutdown()
        server.server_close()
