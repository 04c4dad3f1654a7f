"""The project's own web app: detected by init, run by dockyard_runtime.webapp under uvicorn
(ASGI) or gunicorn (WSGI) over real HTTP, with dockyard's /healthz, /readyz and /metrics."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import Server, post_json, request

from dockyard.detect.webapp import find_web_app

PROJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "projects"


def test_init_detects_a_fastapi_app_and_writes_serve_app(tmp_path: Path) -> None:
    from dockyard.project import init

    project = shutil.copytree(PROJECTS / "fastapi_app", tmp_path / "svc")
    result = init(project)
    assert result.config.serve.app == "api/main.py:app"
    assert "app: api/main.py:app" in result.text
    assert any("runs under uvicorn" in n for n in result.notes)
    assert not any("add uvicorn" in n for n in result.notes)  # the fixture lists it
    (project / "requirements.txt").write_text("fastapi==0.165.0\n")
    assert any("add uvicorn to the requirements" in n for n in init(project, force=True).notes)
    assert find_web_app(PROJECTS / "flask_app").entry == "app.py:app"  # type: ignore[union-attr]
    assert find_web_app(PROJECTS / "mlflow3_wine") is None


def test_serve_app_renders_the_webapp_runner_with_the_same_healthcheck(tmp_path: Path) -> None:
    from dockyard.planning import make_plan
    from dockyard.render.dockerfile import render_dockerfile

    project = shutil.copytree(PROJECTS / "fastapi_app", tmp_path / "svc")
    (project / "dockyard.yaml").write_text("name: svc\nserve: {app: api/main.py:app}\n"
                                           "dependencies: {file: requirements.txt, kind: requirements}\n")
    text = render_dockerfile(make_plan(project))
    assert ('CMD ["python", "-m", "dockyard_runtime.webapp", "--host", "0.0.0.0", "--port", "8080", '
            '"--app", "api.main:app", "--app-dir", "/app"]') in text
    assert "/readyz" in text and "USER 10001:10001" in text


@pytest.mark.parametrize(("project", "module"), [("fastapi_app", "api.main:app"), ("flask_app", "app:app")])
def test_own_app_answers_its_routes_and_dockyards_probes(project: str, module: str, tmp_path: Path) -> None:
    pytest.importorskip("fastapi" if project == "fastapi_app" else "flask")
    pytest.importorskip("uvicorn" if project == "fastapi_app" else "gunicorn")
    app_dir = PROJECTS / project
    with Server(["--app", module, "--app-dir", str(app_dir)], tmp_path, module="dockyard.runtime.webapp") as server:
        server.wait_ready(60)
        assert post_json(server.port, "/score", {"x": 3}) == (200, {"y": 7.0})
        assert request(server.port, "GET", "/healthz")[0] == 200
        status, _, body = request(server.port, "GET", "/metrics")
        assert status == 200 and b'dockyard_app_requests_total{status="200"} 1' in body
        assert json.loads(request(server.port, "GET", "/readyz")[2]) == {"status": "ready"}
        # gunicorn exits 0; uvicorn re-raises the SIGTERM it handled, after draining
        assert server.terminate() in (0, -signal.SIGTERM)


def test_an_asgi_app_runs_in_several_uvicorn_workers(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    args = ["--app", "api.main:app", "--app-dir", str(PROJECTS / "fastapi_app"), "--workers", "2"]
    with Server(args, tmp_path, module="dockyard.runtime.webapp") as server:
        server.wait_ready(60)
        assert all(post_json(server.port, "/score", {"x": n}) == (200, {"y": 2.0 * n + 1}) for n in range(6))
        # Ready means one worker answers; the second may still be starting on a loaded host.
        deadline = time.monotonic() + 30
        while server.log.count("Started server process") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.log.count("Started server process") == 2


def test_an_app_that_cannot_be_imported_says_what_to_install(tmp_path: Path) -> None:
    from dockyard.runtime.webapp import AppProblem, load_app

    (tmp_path / "svc.py").write_text("import not_a_real_package_xyz\napp = None\n")
    with pytest.raises(AppProblem) as info:
        load_app("svc:app", str(tmp_path))
    assert "not_a_real_package_xyz" in info.value.problem and "requirements" in info.value.fix
    (tmp_path / "plain.py").write_text("app = 42\n")
    with pytest.raises(AppProblem, match="not an ASGI or WSGI app"):
        load_app("plain:app", str(tmp_path))


@pytest.mark.parametrize(("file", "text", "entry"), [
    ("Dockerfile", 'FROM python:3.10\nCMD ["uvicorn", "app.prediction_service:app", "--host", "0.0.0.0"]\n',
     "app/prediction_service.py:app"),
    ("Procfile", "web: gunicorn -b 0.0.0.0:$PORT -w 2 app.prediction_service:app\n", "app/prediction_service.py:app"),
    ("Makefile", "serve:\n\tuvicorn app.prediction_service:app --reload\n", "app/prediction_service.py:app"),
    ("README.md", "Run it with\n\n    uvicorn --port 8000 app.prediction_service:app\n", "app/prediction_service.py:app"),
    ("Makefile", "serve:\n\tuvicorn app.missing:app\n", "app/main.py:app"),  # names no file: the convention
    ("Makefile", "serve:\n\tuvicorn app.prediction_service:api\n", "app/main.py:app"),  # no app named api there
    ("Makefile", "serve:\n\tgunicorn --bind localhost:8000\n", "app/main.py:app"),  # a host:port is no module
])
def test_the_app_the_project_runs_wins_over_the_conventional_file(file: str, text: str, entry: str,
                                                                  tmp_path: Path) -> None:
    """A real project had app/main.py (a cloud-only app that needs credentials at import) and
    app/prediction_service.py, which its Makefile and Dockerfile run: init picked the wrong one."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (tmp_path / "app" / "prediction_service.py").write_text("import fastapi\napp = fastapi.FastAPI()\n")
    (tmp_path / file).write_text(text)
    found = find_web_app(tmp_path)
    assert found is not None and found.entry == entry
    if entry != "app/main.py:app":
        assert found.why == f"{file} runs app.prediction_service:app, the FastAPI app app/prediction_service.py creates"


def test_a_served_version_goes_where_the_app_reads_it(tmp_path: Path) -> None:
    """The project's app loads the file its training wrote to the working directory: the version's
    files go over /app after the code (and DOCKYARD_MODEL_DIR says so); zero-code serving keeps
    /opt/dockyard/model."""
    from dockyard.planning import make_plan
    from dockyard.render.dockerfile import render_dockerfile

    project = shutil.copytree(PROJECTS / "fastapi_app", tmp_path / "svc")
    (project / "dockyard.yaml").write_text("name: svc\nserve: {app: api/main.py:app}\n"
                                           "dependencies: {file: requirements.txt, kind: requirements}\n")
    (project / ".dockyard" / "model").mkdir(parents=True)
    (project / ".dockyard" / "model" / "weights.bin").write_bytes(b"\0" * 8)  # no servable suffix: the app's own
    text = render_dockerfile(make_plan(project, model_file=".dockyard/model"))
    serve = text[text.index("AS serve"):]
    assert serve.index("COPY .dockyard/model /app/") > serve.index("COPY api /app/api")
    assert "/opt/dockyard/model" not in serve and "DOCKYARD_MODEL_DIR=/app " in serve
