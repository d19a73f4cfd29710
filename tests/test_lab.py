"""JupyterLab end to end: the real `make lab`, on a free loopback port with a token, driven by Debian's chromium
through selenium (headless).

* Saving an unedited tracked notebook (``notebooks/*.py``, inputs of DVC stages) from Lab leaves it byte-identical;
  a rewritten jupytext header would make DVC rerun the paper (``jupytext.toml`` keeps the header as committed).
* Every notebook opens with the "cliplab (.venv)" kernel, and a smoke-scale copy of it (``smoke = True``, written
  to ``.cliplab/lab-test/`` inside the served root, so ``notebooks/`` is never edited) runs to the end with Run All,
  shows no error output, and renders every figure. Its outputs go to ``.cliplab/scratch/PAPER/`` (the scratch
  folder of a notebook opened by hand); nothing tracked in ``notebooks/`` or ``replications/`` changes.

Screenshots are written to ``.cliplab/lab-screenshots/NAME/``. The server's process group is stopped at the end
(kernels first, through the REST API), so nothing stays behind.
"""

from __future__ import annotations

import difflib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupytext
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))
KERNEL = "cliplab (.venv)"
COPIES = REPO / ".cliplab" / "lab-test"  # smoke copies; hidden folder, served because `make lab` allows hidden files
SCREENSHOTS = REPO / ".cliplab" / "lab-screenshots"
CHECKPOINTS = REPO / "notebooks" / ".ipynb_checkpoints"  # Lab's save also creates a checkpoint there
CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"]
RUN_TIMEOUT_S = 900  # one smoke notebook under Run All (20-120 s alone; far more beside a background job)
SMOKE_LINE = re.compile(r"^smoke: bool = False\b", re.MULTILINE)
UNRENDERED_FIGURE = re.compile(r"^<Figure size [\d.]+x[\d.]+ with \d+ Axes>$")

# State of the notebook shown in Lab's main area, read in the page: kernel name and status, input prompts,
# stderr outputs (Lab renders error tracebacks as stderr too), plain-text outputs and image count.
PANEL_STATE_JS = """
const p = document.querySelector('#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)');
if (!p) return null;
const texts = sel => Array.from(p.querySelectorAll(sel)).map(e => e.textContent.trim());
const kernel = p.querySelector('[data-jp-item-name="kernelName"]');
const indicator = p.querySelector('.jp-Notebook-ExecutionIndicator');
return {
  kernel: kernel ? kernel.textContent.trim() : null,
  status: indicator ? indicator.dataset.status : null,
  cells: p.querySelectorAll('.jp-Notebook .jp-Cell').length,
  prompts: texts('.jp-CodeCell .jp-InputPrompt'),
  stderr: texts('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'),
  plain: texts('.jp-OutputArea-output[data-mime-type="text/plain"]'),
  images: p.querySelectorAll('.jp-OutputArea-output img').length,
  toasts: Array.from(document.querySelectorAll('.Toastify__toast')).map(e => e.textContent.trim()),
};
"""
IMAGE_LOADED_JS = "const i = arguments[0]; return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0;"


@dataclass
class Lab:
    """A running `make lab`: its base URL, token, process (leader of its own process group) and log file."""

    url: str
    token: str
    proc: subprocess.Popen
    log: Path

    def api(self, method: str, path: str) -> Any:
        """Call the Jupyter REST API with the token; the decoded JSON body, or None when there is none."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def get(self, path: str, token: bool = True) -> tuple[int, str]:
        """GET ``path`` without following redirects: the status and the Location header (empty if none)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port(), timeout=30)
        try:
            conn.request("GET", path, headers={"Authorization": f"token {self.token}"} if token else {})
            response = conn.getresponse()
            return response.status, response.getheader("Location", "")
        finally:
            conn.close()

    def page(self, path: str) -> str:
        """A Lab URL for ``path``, loaded on a fresh workspace (``reset``: no tab of an earlier test reopens)."""
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


# ---------------------------------------------------------------------------------------------- machinery


def ensure_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver. Missing ones are installed from Debian's packages (CI runs as root on
    Debian 12; the package lists are refreshed once if the first try fails); the tests skip, saying why, only
    when that install fails."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found  # type: ignore[return-value]
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    failure = ""
    for attempt in ([install], [["apt-get", "update"], install]):
        try:
            for cmd in attempt:
                subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200, check=True)
            break
        except (OSError, subprocess.SubprocessError) as err:
            stderr = getattr(err, "stderr", None) or ""
            failure = f"{err}: {stderr.strip()[-400:]}"
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        pytest.skip(f"chromium/chromedriver missing and `{' '.join(install)}` failed: {failure}")
    return found  # type: ignore[return-value]


def outward_address() -> str | None:
    """This machine's IPv4 address on its outward interface (none is contacted), or None if it has only loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route, sends nothing
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address.startswith("127.") else address


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server is told not to fall back to another)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_lab(state: Path) -> Lab:
    """Start `make lab` on a free port with a random token (``$JUPYTER_TOKEN``, kept off the command line).
    Workspaces, user settings and runtime files go to ``state``, so the user's own Lab state neither leaks in
    (the project's settings overrides are what is tested) nor is touched."""
    port, token, log = free_port(), secrets.token_hex(16), state / "lab.log"
    env = {**os.environ, "JUPYTER_TOKEN": token}
    for var, folder in [("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("JUPYTERLAB_SETTINGS_DIR", "user-settings"),
                        ("JUPYTER_RUNTIME_DIR", "runtime")]:
        (state / folder).mkdir(parents=True, exist_ok=True)
        env[var] = str(state / folder)
    with log.open("wb") as out:
        proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}", "LAB_ARGS=--no-browser"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Lab(url=f"http://127.0.0.1:{port}", token=token, proc=proc, log=log)


def wait_for_lab(lab: Lab, timeout_s: float = 600) -> None:
    """Wait until the server answers its status API (``make lab`` may first bring .venv up to date)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            pytest.fail(f"`make lab` exited with {lab.proc.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("GET", "/api/status")
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"`make lab` did not answer on {lab.url} within {timeout_s:.0f} s:\n{lab.log_tail()}")


def shutdown_kernels(lab: Lab) -> None:
    """Shut down every kernel of the server (they run in their own process groups, not the server's)."""
    for kernel in lab.api("GET", "/api/kernels"):
        lab.api("DELETE", f"/api/kernels/{kernel['id']}")


def stop_lab(lab: Lab) -> None:
    """Stop the server: kernels through the API, then SIGTERM to the process group of make and jupyter (a
    graceful shutdown), SIGKILL if anything of the group is still there after a minute."""
    try:
        shutdown_kernels(lab)
    except OSError:
        pass
    pgid = lab.proc.pid  # start_new_session: make leads its own group, jupyter is in it
    for sig, grace_s in [(signal.SIGTERM, 60), (signal.SIGKILL, 10)]:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and group_alive(pgid):
            lab.proc.poll()  # reap make so its pid does not linger as a zombie
            time.sleep(0.5)
    lab.proc.wait(timeout=10)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still exists."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def tracked_status() -> str:
    """`git status --porcelain` of notebooks/ and replications/ (read-only): what the test must not change."""
    return subprocess.run(["git", "status", "--porcelain", "--", "notebooks", "replications"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


def smoke_copy(notebook: Path) -> Path:
    """Write ``notebook`` with ``smoke = True`` into the served root (the parameters cell is the only change)."""
    text, n = SMOKE_LINE.subn("smoke: bool = True", notebook.read_text(), count=1)
    assert n == 1, f"{notebook.name}: no `smoke: bool = False` line in its parameters cell"
    copy = COPIES / notebook.name
    copy.write_text(text)
    params = next(c for c in jupytext.read(copy).cells if "parameters" in c.metadata.get("tags", []))
    assert "smoke: bool = True" in params.source, f"{copy}: smoke is not set in the parameters cell"
    return copy


def code_cells(notebook: Path) -> int:
    """How many code cells of ``notebook`` Run All executes (Lab skips empty ones)."""
    return sum(1 for c in jupytext.read(notebook).cells if c.cell_type == "code" and c.source.strip())


# ----------------------------------------------------------------------------------------------- browser


def panel_state(driver: WebDriver) -> dict | None:
    """The state of the notebook in Lab's main area (see PANEL_STATE_JS), None while none is shown."""
    return driver.execute_script(PANEL_STATE_JS)


def open_notebook(driver: WebDriver, lab: Lab, path: str, shots: Path) -> dict:
    """Open ``path`` (relative to the repository) in Lab and wait until it shows as a notebook whose kernel is
    up and idle; asserts the kernel is "cliplab (.venv)". Returns the panel state."""
    driver.get(lab.page(path))
    try:
        WebDriverWait(driver, 180, poll_frequency=1).until(
            lambda d: (s := panel_state(d)) and s["cells"] > 0 and s["kernel"] == KERNEL and s["status"] == "idle")
    except TimeoutException:
        driver.save_screenshot(str(shots / "open-failed.png"))
        pytest.fail(f"{path} did not open as a notebook with an idle {KERNEL!r} kernel within 180 s; shown: "
                    f"{panel_state(driver)} (screenshot {shots / 'open-failed.png'})\n{lab.log_tail()}")
    state = panel_state(driver)
    assert state["kernel"] == KERNEL
    news = [t for t in state["toasts"] if "news" in t.lower()]
    assert not news, f"a news pop-up covers the page (lab_overrides.json should turn it off): {news}"
    return state


def run_menu_command(driver: WebDriver, menu: str, command: str) -> None:
    """Click ``menu`` in Lab's menu bar, then its item for ``command`` (a Lab command id)."""
    item = next(e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if e.text.strip() == menu)
    item.click()
    WebDriverWait(driver, 20).until(EC.element_to_be_clickable(
        (By.CSS_SELECTOR, f'.lm-Menu-item[data-command="{command}"]'))).click()


def errors(state: dict) -> list[str]:
    """Error outputs: tracebacks (Lab shows an error output as stderr text)."""
    return [text for text in state["stderr"] if "Traceback" in text]


def run_finished(state: dict | None, expected: int) -> bool:
    """Run All is over: kernel idle, nothing queued, and every code cell numbered, or an error stopped it."""
    if not state or state["status"] != "idle" or any("*" in p for p in state["prompts"]):
        return False
    numbered = sum(1 for p in state["prompts"] if re.fullmatch(r"\[\d+\]:", p))
    return numbered == expected or bool(errors(state))


def wait_for_run(driver: WebDriver, expected: int, timeout_s: float) -> dict:
    """Wait until Run All is over (see run_finished); the final panel state."""
    WebDriverWait(driver, timeout_s, poll_frequency=2).until(lambda d: run_finished(panel_state(d), expected))
    return panel_state(driver)


def run_all(driver: WebDriver, name: str, expected: int, shots: Path) -> dict:
    """Run All from the Run menu and wait until it is over (screenshots before and after); the final state."""
    started = time.monotonic()
    run_menu_command(driver, "Run", "runmenu:run-all")
    try:
        state = wait_for_run(driver, expected, RUN_TIMEOUT_S)
    except TimeoutException:
        driver.save_screenshot(str(shots / "timeout.png"))
        pytest.fail(f"{name}: Run All not finished after {RUN_TIMEOUT_S} s: {panel_state(driver)}")
    warnings = len(state["stderr"]) - len(errors(state))
    print(f"{name}: Run All took {time.monotonic() - started:.0f} s ({warnings} stderr outputs that are not "
          f"errors: warnings, progress bars); screenshots in {shots}")
    driver.save_screenshot(str(shots / "finished.png"))
    return state


def check_figures(driver: WebDriver, shots: Path) -> list[str]:
    """Scroll every output image into view, wait until it is decoded, and screenshot it; the images that never
    loaded (as 'figure-NN: why')."""
    broken = []
    images: list[WebElement] = driver.find_elements(
        By.CSS_SELECTOR, "#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img")
    for n, image in enumerate(images, start=1):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
        try:
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(IMAGE_LOADED_JS, image))
            image.screenshot(str(shots / f"figure-{n:02d}.png"))
        except TimeoutException:
            size = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
            broken.append(f"figure-{n:02d}: not decoded within 30 s (natural size {size})")
    return broken


def save_with_ctrl_s(driver: WebDriver) -> None:
    """Press Ctrl+S in the notebook, as a user would: focus a cell in command mode first (no edit)."""
    prompt = driver.find_element(By.CSS_SELECTOR,
                                 "#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputPrompt")
    prompt.click()
    webdriver.ActionChains(driver).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()


def wait_for_write(path: Path, mtime_ns: int, timeout_s: float = 60) -> bool:
    """Whether ``path`` was rewritten (its mtime moved on) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != mtime_ns:
            time.sleep(1)  # let the write finish before the bytes are read
            return True
        time.sleep(0.25)
    return False


def shots_dir(name: str) -> Path:
    """A fresh screenshot folder for one test."""
    folder = SCREENSHOTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The real `make lab` for this module, stopped (with its kernels) at the end; the smoke copies and the
    checkpoints Lab's saves create are removed again."""
    checkpoints_before = set(CHECKPOINTS.iterdir()) if CHECKPOINTS.is_dir() else None
    COPIES.mkdir(parents=True, exist_ok=True)
    server = start_lab(tmp_path_factory.mktemp("lab-state"))
    try:
        wait_for_lab(server)
        yield server
    finally:
        stop_lab(server)
        shutil.rmtree(COPIES, ignore_errors=True)
        remove_new_checkpoints(checkpoints_before)


def remove_new_checkpoints(before: set[Path] | None) -> None:
    """Remove the checkpoint files the tests' saves added under notebooks/ (the folder too if it was new)."""
    if before is None:
        shutil.rmtree(CHECKPOINTS, ignore_errors=True)
        return
    for path in set(CHECKPOINTS.iterdir()) - before if CHECKPOINTS.is_dir() else ():
        path.unlink()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[WebDriver]:
    """Headless Debian chromium driven by its chromedriver."""
    chromium, chromedriver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


# -------------------------------------------------------------------------------------------------- tests


def test_make_lab_serves_the_repository_on_loopback_with_a_token(lab: Lab) -> None:
    """`make lab` answers on 127.0.0.1 only to the token, is rooted at the repository with hidden folders allowed
    (replications/ and the .cliplab/ scratch outputs can be browsed), opens notebooks/ first, and the project's
    settings overrides (notebooks open as notebooks, no news pop-up) are in effect."""
    assert lab.get("/api/contents", token=False)[0] == 403, "the server answers without the token"
    status, location = lab.get("/")
    assert (status, location.rstrip("?")) == (302, "/lab/tree/notebooks"), f"`/` does not open notebooks/: {location}"
    root = {entry["name"] for entry in lab.api("GET", "/api/contents?content=1")["content"]}
    assert {"notebooks", "replications", ".cliplab", "params.yaml"} <= root, f"not rooted at the repository: {root}"
    news = lab.api("GET", "/lab/api/settings/@jupyterlab/apputils-extension:notification")["schema"]["properties"]
    assert (news["fetchNews"]["default"], news["checkForUpdates"]["default"]) == ("false", False)
    viewers = lab.api("GET", "/lab/api/settings/@jupyterlab/docmanager-extension:plugin")["schema"]["properties"]
    assert viewers["defaultViewers"]["default"].get("python") == "Jupytext Notebook"
    assert f"{lab.url}/lab" in lab.log.read_text(), lab.log_tail()
    address = outward_address()
    if address:  # the server must not be reachable on the machine's other interface
        with pytest.raises(OSError), socket.create_connection((address, lab.port()), timeout=5):
            pass


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_save_of_unedited_notebook_is_byte_identical(lab: Lab, browser: WebDriver, notebook: Path) -> None:
    """Opening a tracked notebook in Lab (kernel "cliplab (.venv)") and saving it unedited rewrites the same
    bytes; the original is restored if not, so a failure never leaves a tracked DVC input changed."""
    shots = shots_dir(f"save-{notebook.stem}")
    before, mtime_ns = notebook.read_bytes(), notebook.stat().st_mtime_ns
    try:
        open_notebook(browser, lab, f"notebooks/{notebook.name}", shots)
        browser.save_screenshot(str(shots / "opened.png"))
        save_with_ctrl_s(browser)
        assert wait_for_write(notebook, mtime_ns), f"Ctrl+S did not save {notebook.name} within 60 s"
        after = notebook.read_bytes()
        diff = "".join(difflib.unified_diff(before.decode().splitlines(True), after.decode().splitlines(True),
                                            "committed", "saved by Lab", n=1))
        assert after == before, f"saving {notebook.name} unedited in Lab changed it:\n{diff}"
    finally:
        if notebook.read_bytes() != before:
            notebook.write_bytes(before)
        shutdown_kernels(lab)


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_at_smoke_scale_in_lab(lab: Lab, browser: WebDriver, notebook: Path) -> None:
    """A smoke copy of the notebook opens with the project kernel, Run All finishes with every code cell run and
    no error output, every figure renders (at least one), and nothing tracked changes."""
    status_before = tracked_status()
    shots = shots_dir(notebook.stem)
    copy = smoke_copy(notebook)
    expected = code_cells(copy)
    try:
        state = open_notebook(browser, lab, copy.relative_to(REPO).as_posix(), shots)
        assert len(state["prompts"]) == expected, f"Lab shows {len(state['prompts'])} code cells, jupytext {expected}"
        browser.save_screenshot(str(shots / "opened.png"))
        state = run_all(browser, notebook.stem, expected, shots)
        assert not errors(state), f"{notebook.stem}: error output in Lab:\n" + "\n\n".join(errors(state))
        numbered = [p for p in state["prompts"] if re.fullmatch(r"\[\d+\]:", p)]
        assert len(numbered) == expected, f"{notebook.stem}: only {len(numbered)} of {expected} code cells ran"
        unrendered = [t for t in state["plain"] if UNRENDERED_FIGURE.match(t)]
        assert not unrendered, f"{notebook.stem}: figures shown as text, not rendered: {unrendered}"
        assert state["images"] >= 1, f"{notebook.stem}: no figure in the outputs"
        broken = check_figures(browser, shots)
        assert not broken, f"{notebook.stem}: figures that did not render: {broken}"
        assert tracked_status() == status_before, "running in Lab changed tracked files in notebooks/ or replications/"
    finally:
        shutdown_kernels(lab)
