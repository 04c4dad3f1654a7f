"""Dockerfile fragments for notebooks: the ``dev`` target (JupyterLab on the project's own venv)
and the notebook runner that the ``train`` target needs when ``train.notebook`` is set.

Invariants:
- The project's venv (/opt/venv) is never modified. The extra tools are installed with uv into
  prefixes of their own (``contract.JUPYTER_DIR``, ``contract.NOTEBOOK_RUNNER_DIR``) in a stage
  built from ``builder``, and copied in as one layer. They are resolved with the venv's exact
  versions as constraints, so a package both need (packaging, traitlets...) is the same version
  in both places and the kernel imports the project's packages unchanged; a tool that cannot
  live with the project's pins fails the build with uv's explanation instead of drifting.
- ``dev`` is rendered only when that target is built, and never last, so the train and serve
  stages, and what a plain ``docker build`` of the file produces, are unchanged by it.
- ``dev`` copies no code: ``dockyard notebook`` mounts the project at /app, so a code edit never
  invalidates a dev layer (the rebuild is all cache hits).
- Serve never carries either prefix; train carries the runner only for a notebook project.
"""

from __future__ import annotations

import json

from ..planning import Plan, notebook_packages
from ..runtime.contract import (
    APP_DIR,
    CA_SECRET_ID,
    JUPYTER_DIR,
    NOTEBOOK_PORT,
    NOTEBOOK_RUNNER_DIR,
    RUNTIME_DIR,
    SECRETS_DIR,
    USER_GID,
    USER_UID,
    VENV_DIR,
)

_COPIED_FROM_ONLY = [
    "# Never run as a container (only copied from), so it needs no HEALTHCHECK.",
    "# hadolint ignore=DL3057",
]


def _tools_stage(name: str, prefix: str, packages: tuple[str, ...]) -> list[str]:
    ca = f"/run/secrets/{CA_SECRET_ID}"
    return [
        *_COPIED_FROM_ONLY,
        f"FROM builder AS {name}",
        "# Constrained to the venv's exact versions; installed beside it, never into it.",
        "RUN --mount=type=cache,target=/root/.cache/uv,sharing=locked \\",
        f"    --mount=type=secret,id={CA_SECRET_ID},target={SECRETS_DIR}/{CA_SECRET_ID} \\",
        f"    if [ -s {ca} ]; then export SSL_CERT_FILE={ca}; fi \\",
        f"    && uv pip freeze --python {VENV_DIR}/bin/python > /tmp/venv-freeze.txt \\",
        "    && sed -n '/==/p' /tmp/venv-freeze.txt > /tmp/venv-constraints.txt \\",
        f"    && uv pip install --python {VENV_DIR}/bin/python --prefix {prefix} --no-compile \\",
        f"       -c /tmp/venv-constraints.txt {' '.join(packages)}",
    ]


def jupyter_stage(plan: Plan) -> list[str]:
    return _tools_stage("jupyter", JUPYTER_DIR, notebook_packages("jupyter", plan.python))


def runner_stage(plan: Plan) -> list[str]:
    return _tools_stage("notebook-runner", NOTEBOOK_RUNNER_DIR, notebook_packages("runner", plan.python))


def _site_packages(plan: Plan, prefix: str) -> str:
    return f"{prefix}/lib/python{plan.python}/site-packages"


def runner_layer(plan: Plan) -> list[str]:
    """Lines at the top of the train stage of a notebook project (after FROM)."""
    return [
        f"COPY --from=notebook-runner {NOTEBOOK_RUNNER_DIR} {NOTEBOOK_RUNNER_DIR}",
        f"ENV PYTHONPATH={RUNTIME_DIR}:{_site_packages(plan, NOTEBOOK_RUNNER_DIR)} "
        f"JUPYTER_PATH={NOTEBOOK_RUNNER_DIR}/share/jupyter",
    ]


def dev_stage(plan: Plan, labels: list[str], project_files: list[str] | None = None) -> list[str]:
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{NOTEBOOK_PORT}/api', timeout=2)"
    cmd = ["python", "-m", "jupyterlab", "--ip=0.0.0.0", f"--port={NOTEBOOK_PORT}", "--no-browser",
           f"--ServerApp.root_dir={APP_DIR}",
           # no calls home from the server: no PyPI update check, no news feed
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"]
    return [
        "FROM runtime-base AS dev",
        f"COPY --from=jupyter {JUPYTER_DIR} {JUPYTER_DIR}",
        f"ENV PYTHONPATH={RUNTIME_DIR}:{_site_packages(plan, JUPYTER_DIR)} \\",
        f"    PATH={JUPYTER_DIR}/bin:{VENV_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\",
        f"    JUPYTER_PATH={JUPYTER_DIR}/share/jupyter \\",
        f"    JUPYTER_CONFIG_PATH={JUPYTER_DIR}/etc/jupyter \\",
        f"    JUPYTERLAB_DIR={JUPYTER_DIR}/share/jupyter/lab",
        *(project_files or []),  # the project's own package, editable: it finds its code in the mount
        "# No code: `dockyard notebook` mounts the project here, read-write, as the host user.",
        f"WORKDIR {APP_DIR}",
        f"USER {USER_UID}:{USER_GID}",
        f"EXPOSE {NOTEBOOK_PORT}",
        "HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \\",
        f"    CMD {json.dumps(['python3', '-I', '-c', probe])}",
        f"CMD {json.dumps(cmd)}",
        *labels,
        'LABEL io.dockyard.role="dev"',
    ]
