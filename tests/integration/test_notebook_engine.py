"""`dockyard notebook` against a real engine, a real JupyterLab and a real browser.

One dev container (the digits example, started like `dockyard notebook --detach`) serves the
module. When the tests run as root, the project copy is owned by uid 4242 so that "the host
user" (the folder's owner, see dockyard.notebook.host_user) is not root, and files Jupyter saves
must come back owned by 4242.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import copy_project, project_name
from dockyard import notebook as nb
from dockyard import project
from dockyard.engine import Engine, RunSpec, run_args
from dockyard.errors import ConfigError, UsageError

websockets_sync = pytest.importorskip("websockets.sync.client")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEST_LABELS = {"io.dockyard.test": "1"}
HOST_UID, HOST_GID = (4242, 4343) if os.getuid() == 0 else (os.getuid(), os.getgid())
VERSION_CODE = "import sklearn; print(sklearn.__version__)"


def _copy_digits(dest: Path) -> Path:
    target = copy_project(EXAMPLES / "digits", dest / "digits")  # under a unique name
    if os.getuid() == 0:
        for root, dirs, files in os.walk(target):
            for entry in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(entry, HOST_UID, HOST_GID)
    return target


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_digits(tmp_path_factory.mktemp("nb"))


@pytest.fixture(scope="module")
def tags() -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    made = {t: f"dockyard-test-nb-{suffix}:{t}" for t in ("dev", "dev2", "train", "serve")}
    yield made
    eng = Engine.connect()
    for ref in made.values():
        eng.remove_image(ref, force=True)


@pytest.fixture(scope="module")
def server(engine: Engine, digits: Path, tags: dict[str, str]) -> Iterator[nb.NotebookOutcome]:
    res = nb.notebook(digits, engine, port=0, tag=tags["dev"], labels=TEST_LABELS)
    yield res
    engine.remove_container(res.container)
    engine.remove_image(res.image, force=True)


@pytest.fixture(scope="module")
def train_version(engine: Engine, digits: Path, tags: dict[str, str]) -> str:
    built = project.build(digits, engine, target="train", tag=tags["train"])
    spec = RunSpec(image=built.image_id, command=("python", "-c", VERSION_CODE), labels=TEST_LABELS)
    proc = engine.docker(*run_args(spec), timeout=120)
    return proc.stdout.strip()


def _api(res: nb.NotebookOutcome, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{res.base_url}{path}", data=data, method=method,
                                 headers={"Authorization": f"token {res.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def _execute_request(code: str) -> tuple[str, dict[str, Any]]:
    msg_id = uuid.uuid4().hex
    return msg_id, {
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3", "date": datetime.now(UTC).isoformat()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }


def _run_in_kernel(res: nb.NotebookOutcome, kernel_id: str, code: str, timeout: float = 90) -> str:
    """Send execute_request on the kernel's websocket; collect stream output until idle."""
    url = f"ws://127.0.0.1:{res.port}/api/kernels/{kernel_id}/channels?token={res.token}"
    msg_id, msg = _execute_request(code)
    out: list[str] = []
    deadline = time.monotonic() + timeout
    with websockets_sync.connect(url, open_timeout=30, max_size=None) as ws:
        ws.send(json.dumps(msg))
        while time.monotonic() < deadline:
            reply = json.loads(ws.recv(timeout=deadline - time.monotonic()))
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = reply["msg_type"], reply["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)
    raise AssertionError(f"no idle status within {timeout}s; output so far: {''.join(out)!r}")


# -- REST + kernel ---------------------------------------------------------------------------------


def test_rest_creates_a_kernel_that_executes_code_with_the_train_images_framework(
    server: nb.NotebookOutcome, train_version: str
) -> None:
    kernel = _api(server, "POST", "/api/kernels", {"name": "python3"})
    try:
        assert kernel["name"] == "python3"
        assert any(k["id"] == kernel["id"] for k in _api(server, "GET", "/api/kernels"))
        out = _run_in_kernel(server, kernel["id"], VERSION_CODE + "\nimport os, sys; print(os.getuid(), os.getgid(), sys.prefix)")
        version, ids = out.strip().splitlines()
        assert version == train_version and version[0].isdigit()
        uid, gid, prefix = ids.split()
        assert (int(uid), int(gid), prefix) == (HOST_UID, HOST_GID, "/opt/venv")  # the project's own venv
    finally:
        _api(server, "DELETE", f"/api/kernels/{kernel['id']}")


def test_the_token_is_required(server: nb.NotebookOutcome) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server.base_url}/api/contents", timeout=10)
    assert info.value.code == 403
    assert server.url == f"{server.base_url}/lab?token={server.token}" and len(server.token) >= 32


def test_container_is_hardened_labelled_and_keeps_the_token_out_of_its_config(
    engine: Engine, server: nb.NotebookOutcome, digits: Path
) -> None:
    info = engine.inspect(server.container, kind="container")
    host, config = info["HostConfig"], info["Config"]
    assert isinstance(host, dict) and isinstance(config, dict)
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == 2 << 30 and host["NanoCpus"] == 2 * 10**9 and host["PidsLimit"] == 512
    assert {b["HostIp"] for binds in host["PortBindings"].values() for b in binds} == {"127.0.0.1"}
    assert config["User"] == f"{HOST_UID}:{HOST_GID}"
    labels = config["Labels"]
    assert labels["io.dockyard.managed"] == "true" and labels["io.dockyard.role"] == "notebook"
    assert labels["io.dockyard.project"] == str(digits)
    assert server.token not in json.dumps(info)  # a read-only file, not env or argv
    listed = engine.containers(["label=io.dockyard.managed=true", "label=io.dockyard.role=notebook"])
    assert server.container in {c["Names"] for c in listed}


def test_outside_app_the_filesystem_is_read_only_and_home_is_tmpfs(server: nb.NotebookOutcome) -> None:
    kernel = _api(server, "POST", "/api/kernels", {"name": "python3"})
    try:
        code = (
            "import os\n"
            "for p in ('/opt/venv/x', '/etc/x', '/app/.write-probe', os.path.expanduser('~/x')):\n"
            "    try:\n        open(p, 'w').close(); print(p, 'ok')\n"
            "    except OSError as e:\n        print(p, e.errno)\n"
            "os.remove('/app/.write-probe')\n"
        )
        out = _run_in_kernel(server, kernel["id"], code).split("\n")
        assert out[:4] == ["/opt/venv/x 30", "/etc/x 30", "/app/.write-probe ok", "/tmp/x ok"]  # 30 = EROFS
    finally:
        _api(server, "DELETE", f"/api/kernels/{kernel['id']}")


# -- the browser -----------------------------------------------------------------------------------


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page target's websocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, timeout: float = 120, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return dict(msg["result"])

    def evaluate(self, expression: str, timeout: float = 120) -> Any:
        res = self.call("Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True,
                        returnByValue=True)
        if "exceptionDetails" in res:
            raise AssertionError(f"JS failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        shot = Path(tempfile.mkstemp(prefix="dockyard-notebook-", suffix=".png")[1])
        shot.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))
        raise AssertionError(f"timed out waiting for {expression} (screenshot: {shot})")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: scripts/setup-host.sh installs it (apt-get install chromium)")
    profile = tmp_path / "profile"
    proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--window-size=1400,1000", "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            page = next(t for t in json.loads(resp.read()) if t["type"] == "page")
        with websockets_sync.connect(page["webSocketDebuggerUrl"], open_timeout=30, max_size=None) as ws:
            yield DevTools(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_DIALOG_ACCEPT = ".jp-Dialog .jp-Dialog-button.jp-mod-accept"


def _output_after_run(browser: DevTools, timeout: float = 120) -> str:
    """Wait for the cell's output. On a loaded host the page can lose its kernel connection
    (jupyter-server/jupyter_server#1265) and then asks which kernel to use: answer it the way a
    person would (the default, Python 3) and keep waiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = browser.evaluate(_OUTPUT_TEXT)
        if text:
            return str(text)
        if browser.evaluate(f"document.querySelector({json.dumps(_DIALOG_ACCEPT)}) !== null"):
            _click(browser, _DIALOG_ACCEPT)
        time.sleep(0.5)
    return str(browser.wait_for(_OUTPUT_TEXT, 1))


def _click(browser: DevTools, selector: str) -> None:
    """A real mouse click (press + release) in the middle of the element."""
    x, y = browser.wait_for(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
        " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    for kind in ("mousePressed", "mouseReleased"):
        browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on screen (the lab may restore others)
_OUTPUT_TEXT = f"Array.from(document.querySelectorAll(\"{_PANEL} .jp-OutputArea-output\")).map(e => e.textContent).join('')"
_TOOLBAR = _PANEL + " .jp-NotebookPanel-toolbar [data-command='{}']"
_KERNEL_IDLE = f"document.querySelector(\"{_PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']\") !== null"


def test_browser_opens_the_url_runs_a_cell_saves_and_the_file_is_the_host_users(
    server: nb.NotebookOutcome, browser: DevTools, digits: Path, train_version: str
) -> None:
    # 1. the printed URL (token in it) renders JupyterLab and logs the browser in
    browser.call("Page.enable")
    browser.call("Page.navigate", url=server.url)
    browser.wait_for("document.querySelector('#jp-main-dock-panel') !== null && document.title.includes('JupyterLab')")
    # 2. an empty notebook to work in (the only step not done in the browser)
    path = "from-browser.ipynb"
    empty = {"nbformat": 4, "nbformat_minor": 5, "cells": [
        {"cell_type": "code", "id": "c1", "metadata": {}, "source": "", "outputs": [], "execution_count": None}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}}
    _api(server, "PUT", f"/api/contents/{path}", {"type": "notebook", "format": "json", "content": empty})
    # Its kernel is started first: a kernel that starts slowly (a busy host) can trip jupyter_server's
    # websocket race (jupyter-server/jupyter_server#1265) and leave the page "Connecting".
    session = _api(server, "POST", "/api/sessions", {"path": path, "type": "notebook", "name": path,
                                                     "kernel": {"name": "python3"}})
    assert _run_in_kernel(server, session["kernel"]["id"], "print('warm')") == "warm\n"
    # 3. open it in the lab UI, wait for the page to show the idle kernel
    browser.call("Page.navigate", url=f"{server.base_url}/lab/tree/{path}?token={server.token}")
    browser.wait_for(_KERNEL_IDLE, 40)
    # 4. type the cell, press the toolbar's Run button, read the output the page shows
    _click(browser, f"{_PANEL} .jp-Cell .jp-InputArea-editor")
    browser.wait_for("document.activeElement !== null && document.activeElement.classList.contains('cm-content')", 10)
    browser.call("Input.insertText", text=VERSION_CODE)
    typed = f"document.querySelector('{_PANEL} .jp-Cell .cm-content').textContent"
    assert browser.wait_for(typed, 10) == VERSION_CODE
    _click(browser, _TOOLBAR.format("notebook:run-cell-and-select-next"))
    assert _output_after_run(browser).strip() == train_version
    # 5. press Save; the file appears on the host with the output, owned by the host user
    _click(browser, _TOOLBAR.format("docmanager:save"))
    saved = digits / path
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not json.loads(saved.read_text())["cells"][0]["outputs"]:
        time.sleep(0.2)
    cell = json.loads(saved.read_text())["cells"][0]
    assert "".join(cell["source"]) == VERSION_CODE
    assert "".join(cell["outputs"][0]["text"]).strip() == train_version
    assert (saved.stat().st_uid, saved.stat().st_gid) == (HOST_UID, HOST_GID)


# -- images ----------------------------------------------------------------------------------------

_FIND = "import importlib.util as u; print([m for m in ('jupyterlab', 'ipykernel', 'nbclient') if u.find_spec(m)])"


def _modules(engine: Engine, image: str) -> str:
    spec = RunSpec(image=image, command=("python", "-c", _FIND), labels=TEST_LABELS)
    return engine.docker(*run_args(spec), timeout=120).stdout.strip()


def test_train_and_serve_images_never_carry_jupyter(
    engine: Engine, server: nb.NotebookOutcome, digits: Path, tags: dict[str, str], train_version: str
) -> None:
    serve = project.build(digits, engine, target="serve", tag=tags["serve"])
    assert _modules(engine, tags["train"]) == "[]"
    assert _modules(engine, serve.image_id) == "[]"
    assert _modules(engine, server.image).startswith("['jupyterlab', 'ipykernel'")
    for image in (tags["train"], serve.image_id):
        proc = engine.docker("run", "--rm", "--label", "io.dockyard.test=1", image, "ls", "/opt/dockyard", timeout=60)
        assert "jupyter" not in proc.stdout


def test_a_code_edit_changes_no_dev_layer(engine: Engine, server: nb.NotebookOutcome, digits: Path,
                                          tags: dict[str, str]) -> None:
    before = engine.inspect(server.image)["RootFS"]
    with (digits / "train.py").open("a") as fh:
        fh.write("\n# edited\n")
    rebuilt = project.build(digits, engine, target="dev", tag=tags["dev2"])
    after = engine.inspect(rebuilt.image_id)["RootFS"]
    assert after == before  # the project is mounted, not copied: every layer is reused
    print(f"dev rebuild after a code edit: {rebuilt.seconds:.1f}s")


# -- bad input ---------------------------------------------------------------------------------------


def test_a_taken_port_fails_before_any_build(engine: Engine, tmp_path: Path) -> None:
    project_dir = _copy_digits(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is in use"):
            nb.notebook(project_dir, engine, port=port, labels=TEST_LABELS)
    assert not (project_dir / ".dockyard").exists()  # refused before the build wrote anything
    assert time.monotonic() - started < 30


def test_a_missing_dependency_file_is_named(engine: Engine, tmp_path: Path) -> None:
    project_dir = _copy_digits(tmp_path)
    (project_dir / "requirements.txt").unlink()
    with pytest.raises(ConfigError, match="dependencies.file names requirements.txt, which does not exist"):
        nb.notebook(project_dir, engine, port=0, labels=TEST_LABELS)


def test_cli_prints_the_url_and_a_clear_error_for_a_taken_port(engine: Engine, tmp_path: Path) -> None:
    project_dir = _copy_digits(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([os.sys.executable, "-m", "dockyard", "notebook", str(project_dir), "--port", str(port)],
                              capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert f"error: port {port} on 127.0.0.1 is in use" in proc.stderr and "fix: pass another --port" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_in_the_foreground_prints_the_url_and_ctrl_c_removes_the_container(engine: Engine, tmp_path: Path) -> None:
    import signal

    project_dir = _copy_digits(tmp_path)
    proc = subprocess.Popen([os.sys.executable, "-m", "dockyard", "notebook", str(project_dir), "--port", "0", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    container = ""
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("JupyterLab: http://127.0.0.1:") and "/lab?token=" in first
        container = proc.stdout.readline().rsplit("container ", 1)[1].rstrip(")\n")
        with urllib.request.urlopen(first.split()[1].replace("/lab?", "/api/status?"), timeout=10) as resp:
            assert resp.status == 200  # the printed URL's token works
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert not engine.containers([f"name={container}"])
    finally:
        if proc.poll() is None:
            proc.kill()
        if container:
            engine.remove_container(container)
        engine.remove_image(f"{project_name(project_dir)}:dev", force=True)  # the CLI tagged NAME:dev


def test_an_own_dockerfile_without_a_dev_stage_builds_the_generated_dev_image(
        engine: Engine, tmp_path: Path) -> None:
    """A project's own Dockerfile for another purpose (no `dev` stage) is left alone: the notebook's
    dev image comes from dockyard's generated Dockerfile, and the build says so."""
    project_dir = _copy_digits(tmp_path)
    (project_dir / "Dockerfile").write_text("FROM dockyard/python:3.11-slim AS train\nCMD [\"python\"]\n")
    lines: list[str] = []
    tag = f"dockyard-test-nb-own-{uuid.uuid4().hex[:10]}:dev"  # this folder's own tag (names are per project)
    try:
        out = project.build(project_dir, engine, target="dev", tag=tag, labels=TEST_LABELS, on_line=lines.append)
        _check_generated_dev_image(engine, project_dir, out, lines, tag)
    finally:
        engine.remove_image(tag, force=True)


def _check_generated_dev_image(engine: Engine, project_dir: Path, out: project.BuildOutcome, lines: list[str],
                               tag: str) -> None:
    assert not out.own_dockerfile and out.dockerfile == project_dir / ".dockyard" / "Dockerfile"
    assert any("has no `dev` stage: building dockyard's generated Dockerfile" in line for line in lines), lines[:5]
    ran = engine.docker("run", "--rm", "--label", "io.dockyard.test=1", "--entrypoint", "jupyter", tag,
                        "lab", "--version")
    assert ran.stdout.strip()[:1].isdigit(), ran.stdout  # JupyterLab is in it: the generated dev stage