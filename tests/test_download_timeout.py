"""Weight downloads run under a hard deadline: a server or proxy that accepts and never answers fails in seconds."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from cliplab.models import WeightsUnavailable, load_model, save_checkpoint
from open_clip.pretrained import get_pretrained_cfg, list_pretrained

HF_TAG = "laion2b_s34b_b79k"
NETWORK_VARS = (
    "HF_HUB_OFFLINE", "HF_ENDPOINT", "HUGGINGFACE_HUB_CACHE", "CLIPLAB_DOWNLOAD_TIMEOUT",
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
)
WALL_LIMIT_S = 15.0


def child_pids() -> set[int]:
    """Process ids of this test process's children."""
    try:
        import psutil
    except ImportError:
        pid = os.getpid()
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return {int(p) for p in text.split()}
    return {child.pid for child in psutil.Process().children(recursive=True)}


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty HF cache, no proxy, no offline flag, no endpoint override; no child left over afterwards."""
    for var in NETWORK_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    before = child_pids()
    yield tmp_path / "hf" / "hub"
    assert child_pids() - before == set(), "a download process outlived load_model"


def _hold(conn: socket.socket, stop: threading.Event) -> None:
    """Read from ``conn`` and never answer, until the peer hangs up or the server stops."""
    conn.settimeout(0.2)
    while not stop.is_set():
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def _accept(server: socket.socket, stop: threading.Event, conns: list[socket.socket]) -> None:
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        conns.append(conn)
        threading.Thread(target=_hold, args=(conn, stop), daemon=True).start()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections, reads, and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(32)
    server.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []
    thread = threading.Thread(target=_accept, args=(server, stop, conns), daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in conns:
        conn.close()
    server.close()


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_error(404)

    do_GET = do_HEAD

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_found_port() -> Iterator[int]:
    """A loopback HTTP server that answers 404 to everything."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def _hub_handler(repo: Path) -> type[http.server.BaseHTTPRequestHandler]:
    """A minimal hub serving ``repo``'s files as ``org/repo`` at one commit, 404 for anything else."""
    prefix = "/org/repo/resolve/main/"

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self, body: bool = False) -> None:
            path = repo / self.path[len(prefix):] if self.path.startswith(prefix) else None
            if path is None or not path.is_file():
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self.do_HEAD(body=True)

        def log_message(self, *args: object) -> None:
            pass

    return Hub


def test_a_download_that_finishes_loads_from_the_cache(empty_hf_cache: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    original = load_model("cliplab-tiny", seed=3).model
    save_checkpoint(original, "cliplab-tiny", tmp_path / "repo")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _hub_handler(tmp_path / "repo"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        loaded = load_model("hf-hub:org/repo", download_timeout=30)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert f"cached {empty_hf_cache}" in loaded.source
    pairs = zip(original.state_dict().values(), loaded.model.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def timed_failure(*args: object, **kwargs: object) -> tuple[str, float]:
    """The WeightsUnavailable message of ``load_model(*args, **kwargs)`` and the seconds it took."""
    tic = time.monotonic()
    with pytest.raises(WeightsUnavailable) as err:
        load_model(*args, **kwargs)
    elapsed = time.monotonic() - tic
    print(f"load_model{args} failed after {elapsed:.2f} s")
    return str(err.value), elapsed


def test_the_hf_tag_is_hub_hosted() -> None:
    assert get_pretrained_cfg("ViT-B-32", HF_TAG).get("hf_hub")
    assert not get_pretrained_cfg("ViT-B-32", HF_TAG).get("url")


def test_a_silent_hub_endpoint_fails_at_the_deadline(empty_hf_cache: Path, silent_port: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    message, elapsed = timed_failure("ViT-B-32", HF_TAG, download_timeout=3)
    assert 3 <= elapsed < WALL_LIMIT_S
    for needle in ("within 3 s", f"http://127.0.0.1:{silent_port}", "CLIPLAB_DOWNLOAD_TIMEOUT", HF_TAG, "local-dir:"):
        assert needle in message


def test_a_silent_hub_endpoint_fails_at_the_deadline_for_hf_hub_specs(empty_hf_cache: Path, silent_port: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    message, elapsed = timed_failure("hf-hub:org/repo", download_timeout=3)
    assert 3 <= elapsed < WALL_LIMIT_S
    for needle in ("hf-hub:org/repo", "within 3 s", f"http://127.0.0.1:{silent_port}"):
        assert needle in message


def test_a_silent_proxy_fails_at_the_deadline(empty_hf_cache: Path, silent_port: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://someone:secret@127.0.0.1:{silent_port}")
    message, elapsed = timed_failure("ViT-B-32", HF_TAG, download_timeout=3)
    assert 3 <= elapsed < WALL_LIMIT_S
    assert f"https://huggingface.co via the proxy http://127.0.0.1:{silent_port}" in message
    assert "within 3 s" in message and "secret" not in message


def test_a_url_tag_behind_a_silent_proxy_fails_at_the_deadline(empty_hf_cache: Path, silent_port: int, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url_only = [(m, t) for m, t in list_pretrained()
                if get_pretrained_cfg(m, t).get("url") and not get_pretrained_cfg(m, t).get("hf_hub")]
    if not url_only:
        pytest.skip("this open_clip has no pretrained tag served only from a URL (every tag has an hf_hub)")
    name, tag = url_only[0]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{silent_port}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{silent_port}")
    message, elapsed = timed_failure(name, tag, cache_dir=tmp_path / "clip", download_timeout=3)
    assert elapsed < WALL_LIMIT_S
    assert "within 3 s" in message and f"127.0.0.1:{silent_port}" in message


def test_a_refused_connection_still_fails_fast(empty_hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    message, elapsed = timed_failure("ViT-B-32", HF_TAG, download_timeout=60)
    assert elapsed < 5 and "unreachable" in message
    message, elapsed = timed_failure("hf-hub:org/repo", download_timeout=60)
    assert elapsed < 5 and "unreachable" in message


def test_a_download_error_is_reported_with_the_childs_last_line(empty_hf_cache: Path, not_found_port: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{not_found_port}")
    message, elapsed = timed_failure("hf-hub:org/repo", download_timeout=30)
    assert elapsed < WALL_LIMIT_S
    assert "failed (error: " in message and "404" in message and "within" not in message


def test_the_deadline_comes_from_the_environment(empty_hf_cache: Path, silent_port: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    monkeypatch.setenv("CLIPLAB_DOWNLOAD_TIMEOUT", "2")
    message, elapsed = timed_failure("ViT-B-32", HF_TAG)
    assert 2 <= elapsed < WALL_LIMIT_S
    assert "within 2 s" in message


def test_a_bad_deadline_is_refused(empty_hf_cache: Path, silent_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    monkeypatch.setenv("CLIPLAB_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="CLIPLAB_DOWNLOAD_TIMEOUT"):
        load_model("ViT-B-32", HF_TAG)
    with pytest.raises(ValueError, match="download_timeout"):
        load_model("ViT-B-32", HF_TAG, download_timeout=0)
