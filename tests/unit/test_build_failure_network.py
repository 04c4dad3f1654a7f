"""A build that cannot reach a package index says which server, not just "exit code: 2"
(recorded from the real-world corpus: pytorch/examples asks for download.pytorch.org/whl/cpu)."""

from __future__ import annotations

from dockyard.engine import build_failure

STEP = ("[builder 3/3] RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked     "
        "--mount=type=cache,target=/root/.cache/uv,sharing=locked     if ! command -v uv >/dev/null; then "
        "python3.11 -m venv /opt/uv; fi && VIRTUAL_ENV=/opt/venv uv pip install -r /tmp/requirements.txt")
LOG = f"""\
#10 {STEP}
#10 1.437 Using Python 3.11.2 environment at: /opt/venv
#10 10.67 error: Request failed after 3 retries in 9.2s
#10 10.67   cause: Failed to fetch: https://download.pytorch.org/whl/cpu/torch/
#10 10.67   cause: error sending request for url (https://download.pytorch.org/whl/cpu/torch/)
#10 10.67   cause: client error (Connect)
#10 10.67   cause: dns error
#10 10.67   cause: error resolving DNS
#10 10.67   cause: failed to lookup address information: Name or service not known
#10 ERROR: executor failed running [/bin/sh -c if ! command -v uv >/dev/null; then ...]: exit code: 2
------
 > {STEP}:
------
executor failed running [/bin/sh -c if ! command -v uv >/dev/null; then ...]: exit code: 2
"""


def test_an_unreachable_index_is_named_with_its_cause() -> None:
    error = build_failure(LOG.splitlines())

    assert error.exit_code == 3
    assert "cannot reach https://download.pytorch.org/whl/cpu/torch/" in error.problem
    assert "Name or service not known" in error.problem
    assert error.problem.startswith("build failed at step [builder 3/3] RUN --mount=")
    assert len(error.problem) < 260  # one readable line, not the whole RUN command
    assert "download.pytorch.org" in error.fix and "cannot reach" in error.fix
    assert "PIP_FIND_LINKS" in error.fix  # dockyard.wheelhouse: the way out that works offline
    assert error.step == STEP and "dns error" in error.log_tail


def test_a_resolver_failure_is_not_mistaken_for_a_network_one() -> None:
    log = [f"#12 {STEP}", "#12 1.874   × No solution found when resolving dependencies:",
           "#12 1.874   ╰─▶ Because there is no version of scikit-learn==9.9.9 and you require it",
           "#12 ERROR: executor failed running [/bin/sh -c uv pip install]: exit code: 1"]

    error = build_failure(log)

    assert "cannot reach" not in error.problem
    assert "no set of versions satisfies the project's requirements" in error.problem  # the resolver's own failure
