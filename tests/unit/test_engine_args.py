"""The engine's pure parts: hardened `docker run` flags, secrets, BuildKit detection, failure mapping.

No Docker Engine is needed: BuildKit detection runs fake `docker` clients written into tmp_path.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dockyard.engine import (
    Mount,
    RunSpec,
    Secret,
    build_failure,
    classify_failure,
    detect_buildkit,
    run_args,
)
from dockyard.errors import BuildError, EngineError, RunError, UsageError


def _flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


# -- run_args: hardened by default ------------------------------------------------------------


def test_default_run_is_hardened() -> None:
    args = run_args(RunSpec(image="demo:latest", command=("python", "-c", "print(1)")))

    assert args[0] == "run"
    assert "--read-only" in args
    assert any(v.startswith("/tmp:") and "nosuid" in v for v in _flag_values(args, "--tmpfs"))
    assert _flag_values(args, "--cap-drop") == ["ALL"]
    assert _flag_values(args, "--security-opt") == ["no-new-privileges"]
    assert _flag_values(args, "--pids-limit") == ["512"]
    assert _flag_values(args, "--memory") == ["2g"]
    assert _flag_values(args, "--cpus") == ["2"]
    for risky in ("--privileged", "--pid", "--ipc"):
        assert risky not in args
    assert "host" not in _flag_values(args, "--network")
    # The image comes after every flag, and the command after the image.
    assert args[-4:] == ["demo:latest", "python", "-c", "print(1)"]


def test_resource_limits_come_from_the_spec() -> None:
    args = run_args(RunSpec(image="x", cpus=0.5, memory="512m", pids=64, gpus="all"))

    assert _flag_values(args, "--cpus") == ["0.5"]
    assert _flag_values(args, "--memory") == ["512m"]
    assert _flag_values(args, "--pids-limit") == ["64"]
    assert _flag_values(args, "--gpus") == ["all"]


def test_ports_publish_on_loopback_unless_public() -> None:
    private = run_args(RunSpec(image="x", ports=((18080, 8080),)))
    public = run_args(RunSpec(image="x", ports=((18080, 8080),), public=True))

    assert _flag_values(private, "--publish") == ["127.0.0.1:18080:8080"]
    assert _flag_values(public, "--publish") == ["0.0.0.0:18080:8080"]


def test_mounts_env_and_labels_are_passed_as_separate_argv_items(tmp_path: Path) -> None:
    args = run_args(
        RunSpec(
            image="x",
            mounts=(Mount(str(tmp_path), "/data", read_only=True),),
            env={"GREETING": "hello world; rm -rf /"},
            labels={"io.dockyard.test": "1"},
        )
    )

    assert _flag_values(args, "--mount") == [f"type=bind,source={tmp_path},target=/data,readonly"]
    assert _flag_values(args, "--env") == ["GREETING=hello world; rm -rf /"]
    assert _flag_values(args, "--label") == ["io.dockyard.test=1"]


def test_writable_root_only_when_asked_for() -> None:
    args = run_args(RunSpec(image="x", read_only=False))

    assert "--read-only" not in args
    assert _flag_values(args, "--cap-drop") == ["ALL"]  # the rest of the hardening stays


# (case, risky spec fields, the allow flag that permits it, what the refusal must name, the flag it must suggest)
RISKY = [
    ("privileged", dict(privileged=True), dict(allow_privileged=True), "privileged", "--allow-privileged"),
    ("host network", dict(host_network=True), dict(allow_host_namespaces=True), "network", "--allow-host-namespaces"),
    ("host pid", dict(host_pid=True), dict(allow_host_namespaces=True), "pid", "--allow-host-namespaces"),
    ("host ipc", dict(host_ipc=True), dict(allow_host_namespaces=True), "ipc", "--allow-host-namespaces"),
    ("mount /", dict(mounts=(Mount("/", "/host"),)), dict(allow_dangerous_mounts=True), "/", "--allow-dangerous-mounts"),
    ("mount /etc", dict(mounts=(Mount("/etc", "/host-etc"),)), dict(allow_dangerous_mounts=True), "/etc", "--allow-dangerous-mounts"),
    ("mount /etc/ spelled with a slash", dict(mounts=(Mount("/etc/", "/e"),)), dict(allow_dangerous_mounts=True), "/etc", "--allow-dangerous-mounts"),
    ("mount /proc", dict(mounts=(Mount("/proc", "/p"),)), dict(allow_dangerous_mounts=True), "/proc", "--allow-dangerous-mounts"),
    ("mount /sys", dict(mounts=(Mount("/sys", "/s"),)), dict(allow_dangerous_mounts=True), "/sys", "--allow-dangerous-mounts"),
    ("mount /sys via ..", dict(mounts=(Mount("/usr/../sys", "/s"),)), dict(allow_dangerous_mounts=True), "/sys", "--allow-dangerous-mounts"),
    (
        "mount the docker socket",
        dict(mounts=(Mount("/var/run/docker.sock", "/var/run/docker.sock"),)),
        dict(allow_dangerous_mounts=True),
        "docker.sock",
        "--allow-dangerous-mounts",
    ),
]


@pytest.mark.parametrize(("case", "risky", "allow", "named", "flag"), RISKY, ids=[r[0] for r in RISKY])
def test_risky_run_is_refused_without_its_allow_flag(
    case: str, risky: dict[str, object], allow: dict[str, object], named: str, flag: str
) -> None:
    with pytest.raises(UsageError) as info:
        run_args(RunSpec(image="x", **risky))  # type: ignore[arg-type]

    assert named in info.value.problem
    assert flag in info.value.fix
    assert info.value.exit_code == 1


@pytest.mark.parametrize(("case", "risky", "allow", "named", "flag"), RISKY, ids=[r[0] for r in RISKY])
def test_risky_run_is_allowed_with_its_allow_flag(
    case: str, risky: dict[str, object], allow: dict[str, object], named: str, flag: str
) -> None:
    args = run_args(RunSpec(image="x", **risky, **allow))  # type: ignore[arg-type]

    assert args[-1] == "x"
    assert _flag_values(args, "--cap-drop") == ["ALL"]


def test_allow_flags_do_not_cross_over() -> None:
    # Allowing dangerous mounts must not also allow a privileged container.
    with pytest.raises(UsageError):
        run_args(RunSpec(image="x", privileged=True, allow_dangerous_mounts=True, allow_host_namespaces=True))


def test_host_namespaces_emit_the_matching_flags_when_allowed() -> None:
    args = run_args(RunSpec(image="x", host_network=True, host_pid=True, host_ipc=True, allow_host_namespaces=True))

    assert _flag_values(args, "--network") == ["host"]
    assert _flag_values(args, "--pid") == ["host"]
    assert _flag_values(args, "--ipc") == ["host"]


def test_narrow_host_directories_are_fine(tmp_path: Path) -> None:
    args = run_args(RunSpec(image="x", mounts=(Mount(str(tmp_path), "/work"), Mount("/etc/ssl/certs", "/certs", True))))

    assert len(_flag_values(args, "--mount")) == 2


def test_symlink_to_the_docker_socket_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "sock"
    link.symlink_to("/var/run/docker.sock")

    with pytest.raises(UsageError):
        run_args(RunSpec(image="x", mounts=(Mount(str(link), "/var/run/docker.sock"),)))


def test_parent_of_the_docker_socket_is_refused() -> None:
    with pytest.raises(UsageError):
        run_args(RunSpec(image="x", mounts=(Mount("/var/run", "/host-run"),)))


# -- Secret.parse ------------------------------------------------------------------------------


def test_secret_from_a_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret")

    secret = Secret.parse(f"id=hf_token,src={token}")

    assert (secret.id, secret.src, secret.env) == ("hf_token", str(token), None)
    assert secret.build_flag() == f"id=hf_token,src={token}"


def test_secret_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_TEST_TOKEN", "s3cret")

    secret = Secret.parse("id=pip.conf,env=DOCKYARD_TEST_TOKEN")

    assert (secret.id, secret.src, secret.env) == ("pip.conf", None, "DOCKYARD_TEST_TOKEN")
    assert secret.build_flag() == "id=pip.conf,env=DOCKYARD_TEST_TOKEN"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("hf_token", "hf_token"),  # no id=
        ("id=hf_token", "id=hf_token"),  # neither src nor env
        ("id=hf_token,src=/x,env=Y", "id=hf_token"),  # both
        ("id=bad id,env=HOME", "bad id"),  # space in the id
        ("id=,env=HOME", "id="),
        ("src=/etc/hostname", "src=/etc/hostname"),
    ],
)
def test_malformed_secret_is_a_usage_error_with_an_example(text: str, named: str) -> None:
    with pytest.raises(UsageError) as info:
        Secret.parse(text)

    assert named in info.value.problem
    assert "--secret id=" in info.value.fix


def test_secret_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope"

    with pytest.raises(UsageError) as info:
        Secret.parse(f"id=tok,src={missing}")

    assert str(missing) in info.value.problem


def test_secret_variable_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_TEST_UNSET", raising=False)

    with pytest.raises(UsageError) as info:
        Secret.parse("id=tok,env=DOCKYARD_TEST_UNSET")

    assert "DOCKYARD_TEST_UNSET" in info.value.problem
    assert "export DOCKYARD_TEST_UNSET" in info.value.fix


def test_secret_value_never_appears_in_the_build_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_TEST_TOKEN", "value-that-must-not-leak")

    assert "value-that-must-not-leak" not in Secret.parse("id=t,env=DOCKYARD_TEST_TOKEN").build_flag()


# -- detect_buildkit with fake clients -----------------------------------------------------------


def _fake_docker(tmp_path: Path, name: str, version: str, buildx: bool) -> str:
    """A `docker` stand-in: answers `version --format ...` and `buildx version` like the real client."""
    path = tmp_path / name / "docker"
    path.parent.mkdir()
    buildx_branch = (
        'echo "github.com/docker/buildx v0.23.0 28f7e0d"; exit 0'
        if buildx
        else "echo \"docker: 'buildx' is not a docker command.\" >&2; exit 1"
    )
    path.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f'  version) echo "{version}" ;;\n'
        f"  buildx) {buildx_branch} ;;\n"
        '  *) echo "unexpected: $*" >&2; exit 2 ;;\n'
        "esac\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def test_new_client_without_buildx_has_no_buildkit_and_says_why(tmp_path: Path) -> None:
    docker = _fake_docker(tmp_path, "new", "28.2.2", buildx=False)

    support = detect_buildkit(candidates=[docker])

    assert support.mode == "none"
    assert docker in support.why and "28.2.2" in support.why
    assert "buildx" in support.why


def test_old_client_uses_the_environment_switch(tmp_path: Path) -> None:
    docker = _fake_docker(tmp_path, "old", "20.10.24+dfsg1", buildx=False)

    support = detect_buildkit(candidates=[docker])

    assert (support.mode, support.docker, support.client_version) == ("env", docker, "20.10.24+dfsg1")
    assert "DOCKER_BUILDKIT=1" in support.why


def test_client_with_buildx_uses_buildx(tmp_path: Path) -> None:
    docker = _fake_docker(tmp_path, "bx", "28.2.2", buildx=True)

    support = detect_buildkit(candidates=[docker])

    assert (support.mode, support.docker) == ("buildx", docker)


def test_a_later_usable_client_is_chosen_over_an_unusable_one(tmp_path: Path) -> None:
    new = _fake_docker(tmp_path, "new", "28.2.2", buildx=False)
    old = _fake_docker(tmp_path, "old", "20.10.24", buildx=False)

    support = detect_buildkit(candidates=[new, old])

    assert (support.mode, support.docker) == ("env", old)


def test_missing_or_broken_clients_are_skipped(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    good = _fake_docker(tmp_path, "bx", "27.0.1", buildx=True)

    support = detect_buildkit(candidates=[str(tmp_path / "does-not-exist"), str(broken), good])

    assert (support.mode, support.docker) == ("buildx", good)


def test_no_client_at_all_is_mode_none() -> None:
    support = detect_buildkit(candidates=[])

    assert support.mode == "none"
    assert "no docker client" in support.why


# -- build_failure on recorded BuildKit plain progress ---------------------------------------------

_UV_STEP = (
    "[builder 4/6] RUN --mount=type=cache,target=/root/.cache/uv,sharing=locked     "
    "--mount=type=secret,id=dockyard_ca,target=/run/secrets/dockyard_ca     "
    "if [ -s /run/secrets/dockyard_ca ]; then export SSL_CERT_FILE=/run/secrets/dockyard_ca; fi     "
    "&& VIRTUAL_ENV=/opt/venv /opt/uv/bin/uv pip install -r /tmp/requirements.txt"
)
_UV_SHELL = (
    "/bin/sh -c if [ -s /run/secrets/dockyard_ca ]; then export SSL_CERT_FILE=/run/secrets/dockyard_ca; fi     "
    "&& VIRTUAL_ENV=/opt/venv /opt/uv/bin/uv pip install -r /tmp/requirements.txt"
)

# Recorded shape of `docker build --progress plain` (client 20.10, DOCKER_BUILDKIT=1): steps run in
# parallel, so lines of different steps interleave; the failing step's lines are summarised again
# between "------" rules; the last line is the executor error.
BUILDKIT_LOG_20_10 = f"""\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 3.02kB done
#1 DONE 0.0s

#2 [internal] load .dockerignore
#2 transferring context: 1.21kB done
#2 DONE 0.0s

#3 [internal] load metadata for docker.io/library/python:3.11
#3 DONE 0.0s

#5 [builder 1/6] FROM docker.io/library/python:3.11
#5 DONE 0.0s

#6 [runtime-base 1/6] FROM docker.io/library/python:3.11-slim
#6 DONE 0.0s

#7 [internal] load build context
#7 transferring context: 48.11kB 0.0s done
#7 DONE 0.0s

#8 [builder 2/6] RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked     python3.11 -m venv /opt/uv
#8 CACHED

#10 [builder 3/6] COPY .dockyard/requirements.txt /tmp/requirements.txt
#10 DONE 0.1s

#12 {_UV_STEP}
#12 0.231 Using Python 3.11.14 environment at: /opt/venv
#11 [runtime-base 3/6] COPY .dockyard/runtime /opt/dockyard/runtime
#11 DONE 0.1s
#12 1.874   × No solution found when resolving dependencies:
#12 1.874   ╰─▶ Because there is no version of scikit-learn==9.9.9 and you require
#12 1.874       scikit-learn==9.9.9, we can conclude that your requirements are
#12 1.874       unsatisfiable.
#12 ERROR: executor failed running [{_UV_SHELL}]: exit code: 1

#13 [runtime-base 4/6] RUN python -m compileall -q /opt/dockyard/runtime
#13 CANCELED
------
 > {_UV_STEP}:
#12 0.231 Using Python 3.11.14 environment at: /opt/venv
#12 1.874   × No solution found when resolving dependencies:
------
executor failed running [{_UV_SHELL}]: exit code: 1
"""

# The same failure from a buildx client (23+), which words the error differently.
BUILDKIT_LOG_BUILDX = f"""\
#12 {_UV_STEP}
#12 0.231 Using Python 3.11.14 environment at: /opt/venv
#12 1.874   × No solution found when resolving dependencies:
#12 1.874       unsatisfiable.
#12 ERROR: process "{_UV_SHELL}" did not complete successfully: exit code: 1
------
 > {_UV_STEP}:
#12 1.874   × No solution found when resolving dependencies:
------
ERROR: failed to solve: process "{_UV_SHELL}" did not complete successfully: exit code: 1
"""


@pytest.mark.parametrize("log", [BUILDKIT_LOG_20_10, BUILDKIT_LOG_BUILDX], ids=["docker-20.10", "buildx"])
def test_build_failure_names_the_failing_step_and_keeps_its_log_tail(log: str) -> None:
    error = build_failure(log.splitlines())

    assert isinstance(error, BuildError)
    assert error.exit_code == 3
    assert error.step == _UV_STEP
    assert "[builder 4/6]" in error.problem
    # a resolver failure is named as one, with the resolver's own explanation where it gave one
    assert "no set of versions satisfies the project's requirements" in error.problem
    if "Because" in log:
        assert "there is no version of scikit-learn==9.9.9" in error.problem
        assert "we can conclude that your requirements are unsatisfiable." in error.problem
    assert "No solution found when resolving dependencies" in error.log_tail
    assert error.details == error.log_tail
    # The tail is the failing step's, not the interleaved lines of other steps.
    assert "compileall" not in error.log_tail
    assert "COPY .dockyard/runtime" not in error.log_tail
    assert error.fix


def test_build_failure_of_a_copy_names_the_missing_file() -> None:
    log = [
        "#9 [builder 3/6] COPY .dockyard/requirements.txt /tmp/requirements.txt",
        '#9 ERROR: failed to calculate checksum of ref 4b1f::x: "/.dockyard/requirements.txt": not found',
        "------",
        " > [builder 3/6] COPY .dockyard/requirements.txt /tmp/requirements.txt:",
        "------",
        'failed to compute cache key: "/.dockyard/requirements.txt": not found',
    ]

    error = build_failure(log)

    assert error.step == "[builder 3/6] COPY .dockyard/requirements.txt /tmp/requirements.txt"
    assert "requirements.txt" in error.problem and "not found" in error.problem


def test_build_failure_of_conflicting_requirements_says_what_conflicts() -> None:
    # a real Kaggle-style requirements.txt: streamlit==1.26.0 needs pillow<10 beside pillow==10.2.0
    log = [
        "#10 [builder 3/3] RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked     --mount=type=cache,target=/root/.cache/uv",
        "#10 0.513 Using Python 3.11.2 environment at: /opt/venv",
        "#10 0.993 error: No solution found when resolving dependencies",
        "#10 0.993   cause: Because streamlit==1.26.0 depends on pillow>=7.1.0,<10 and you require streamlit==1.26.0, "
        "we can conclude that you require pillow>=7.1.0,<10.",
        "#10 0.993          And because you require pillow==10.2.0, we can conclude that your requirements are "
        "unsatisfiable.",
        "#10 ERROR: executor failed running [/bin/sh -c if ! command -v uv >/dev/null; then ...]: exit code: 1",
        "------",
        "error: failed to solve: executor failed running [/bin/sh -c ...]: exit code: 1",
    ]

    error = build_failure(log)

    assert "no set of versions satisfies" in error.problem
    assert "streamlit==1.26.0 depends on pillow>=7.1.0,<10" in error.problem
    assert "And because you require pillow==10.2.0" in error.problem
    assert "executor failed" not in error.problem
    assert "dependency file" in error.fix and "--no-cache" not in error.fix
    assert "pillow==10.2.0" in error.log_tail


def test_build_failure_of_pip_resolution_impossible_is_named_too() -> None:
    log = [
        "#7 [builder 2/2] RUN pip install -r requirements.txt",
        "#7 3.1 ERROR: Cannot install a==1.0 and b==2.0 because these package versions have conflicting dependencies.",
        "#7 3.1 The conflict is caused by:",
        "#7 3.1     a 1.0 depends on c<2",
        "#7 3.1 ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/",
        "#7 ERROR: process did not complete successfully: exit code: 1",
    ]
    error = build_failure(log)
    assert "no set of versions satisfies" in error.problem and "a 1.0 depends on c<2" in error.problem


def test_build_failure_of_another_kind_keeps_the_generic_fix() -> None:
    log = ["#5 [builder 2/2] RUN make", "#5 0.2 make: *** No rule to make target", "#5 ERROR: exit code: 2"]
    error = build_failure(log)
    assert "no set of versions satisfies" not in error.problem and "--no-cache" in error.fix


def test_build_failure_without_step_markers_still_keeps_the_output() -> None:
    error = build_failure(["unable to prepare context: path \"/nope\" not found"])

    assert error.step == ""
    assert "(unknown)" in error.problem
    assert "/nope" in error.log_tail


# -- classify_failure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stderr",
    [
        "Cannot connect to the Docker daemon at unix:///nonexistent.sock. Is the docker daemon running?",
        (
            'error during connect: Get "http://%2Fnonexistent.sock/v1.41/version": dial unix /nonexistent.sock: '
            "connect: no such file or directory"
        ),
    ],
)
def test_unreachable_daemon_is_an_engine_error_with_exit_2(stderr: str) -> None:
    error = classify_failure(["docker", "version"], 1, stderr)

    assert isinstance(error, EngineError)
    assert error.exit_code == 2
    assert "cannot reach the Docker Engine" in error.problem
    assert "DOCKER_HOST" in error.fix


def test_socket_permission_problem_is_an_engine_error() -> None:
    stderr = (
        "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: "
        "Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.24/version\": dial unix /var/run/docker.sock: connect: permission denied"
    )

    error = classify_failure(["docker", "ps"], 1, stderr)

    assert isinstance(error, EngineError)
    assert "docker group" in error.fix


def test_unknown_image_is_named() -> None:
    error = classify_failure(["docker", "run", "nope:1"], 125, "Unable to find image 'nope:1' locally\n"
                             "docker: Error response from daemon: pull access denied for nope, repository does not exist")

    assert isinstance(error, EngineError)
    assert "image not found" in error.problem


def test_other_docker_failures_are_run_errors_that_keep_the_command() -> None:
    argv = ["docker", "run", "--rm", "demo", "false"]

    error = classify_failure(argv, 125, "docker: Error response from daemon: something odd.\n")

    assert isinstance(error, RunError)
    assert error.exit_code == 3
    assert error.exit_status == 125
    assert "docker run --rm demo false" in error.fix
    assert "something odd" in error.problem



@pytest.mark.parametrize("stderr", [
    "docker: Error response from daemon: driver failed programming external connectivity on endpoint x (abc):"
    " Bind for 127.0.0.1:8888 failed: port is already allocated.\n",
    "docker: Error response from daemon: driver failed programming external connectivity on endpoint x (abc):"
    " Error starting userland proxy: listen tcp4 127.0.0.1:8888: bind: address already in use.\n",
])
def test_a_taken_host_port_is_a_usage_error_naming_it(stderr: str) -> None:
    error = classify_failure(["docker", "run", "-p", "127.0.0.1:8888:8888", "img"], 125, stderr)

    assert isinstance(error, UsageError) and error.exit_code == 1
    assert error.problem == "host port 127.0.0.1:8888 is already in use"
    assert "--port" in error.fix
