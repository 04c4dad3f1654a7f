"""With no dependency file, the server dockyard runs the project's own app under is installed."""

from __future__ import annotations

from pathlib import Path

from dockyard.planning import make_plan
from dockyard.project import init
from projectfiles import write

FLASK_APP = """\
from flask import Flask, request
import pickle

app = Flask(__name__)
model = pickle.load(open('model.pkl', 'rb'))
"""
FASTAPI_APP = "from fastapi import FastAPI\n\napi = FastAPI()\n"
TRAIN = "import pandas as pd\nfrom sklearn import linear_model\nimport pickle\n"


def test_a_flask_app_with_no_requirements_file_gets_gunicorn(tmp_path: Path) -> None:
    # the tutorial pattern: app.py + ml-model/model.py, no requirements file at all
    proj = write(tmp_path / "houses", {"app.py": FLASK_APP, "ml-model/model.py": TRAIN,
                                       "dockyard.yaml": "name: houses\nserve:\n  app: app.py:app\n"})
    plan = make_plan(proj)
    assert "gunicorn" in plan.requirements and "flask" in plan.requirements
    line = next(c for c in plan.choices if c.what == "inferred requirement" and c.value.startswith("gunicorn"))
    assert "runs the flask app app.py:app" in line.why


def test_an_asgi_app_gets_uvicorn_and_a_listed_server_is_kept(tmp_path: Path) -> None:
    proj = write(tmp_path / "api", {"main.py": FASTAPI_APP, "dockyard.yaml": "name: api\nserve:\n  app: main.py:api\n"})
    assert "uvicorn" in make_plan(proj).requirements
    with_file = write(tmp_path / "listed", {"main.py": FASTAPI_APP, "requirements.txt": "fastapi\n",
                                            "dockyard.yaml": "name: listed\ndependencies:\n  file: requirements.txt\n"
                                                             "serve:\n  app: main.py:api\n"})
    # a dependency file decides: dockyard does not add a server to it (init says to add one)
    assert not any(r.startswith("uvicorn") for r in make_plan(with_file).requirements)


def test_init_says_the_server_is_installed_when_it_infers_the_requirements(tmp_path: Path) -> None:
    proj = write(tmp_path / "inferred", {"main.py": FASTAPI_APP})
    notes = "\n".join(init(proj).notes)
    assert "uvicorn is installed with the requirements inferred from imports" in notes
    assert "does not install it" not in notes
