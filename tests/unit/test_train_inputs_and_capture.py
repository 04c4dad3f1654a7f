"""The pure parts of `dockyard train` (no Docker): params, secrets masking, code hash, capture of
files written into the working directory, and checks that must fail before any build."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from dockyard.engine import Secret
from dockyard.errors import UsageError
from dockyard.runsecrets import secret_file as _secret_file
from dockyard.runsecrets import secret_values as _secret_values
from dockyard.fsio import hash_file
from dockyard.train import (
    changed_files,
    check_data,
    _collect,
    _extract,
    _Logs,
    code_hash,
    param_env,
    parse_params,
)


def test_params_become_upper_case_env_and_a_json_blob() -> None:
    params = parse_params(["C=0.1", "max_iter=50", "note=a=b"])
    assert params == {"C": "0.1", "max_iter": "50", "note": "a=b"}
    env = param_env(params)
    assert env["PARAM_C"] == "0.1" and env["PARAM_MAX_ITER"] == "50" and env["PARAM_NOTE"] == "a=b"
    assert json.loads(env["DOCKYARD_PARAMS"]) == params


@pytest.mark.parametrize("bad", ["C", "=1", "1x=2", "my-param=3"])
def test_bad_param_is_a_usage_error_naming_it(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_params([bad])
    assert repr(bad.split("=")[0]) in info.value.problem or repr(bad) in info.value.problem
    assert info.value.fix


def test_missing_or_file_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        check_data(tmp_path / "nope")
    (tmp_path / "f.csv").write_text("x")
    with pytest.raises(UsageError, match="is not a directory"):
        check_data(tmp_path / "f.csv")
    assert check_data(tmp_path) == tmp_path.resolve()


def test_secret_values_are_masked_in_every_log_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tok").write_text("line-one-secret\nline-two-secret\n")
    monkeypatch.setenv("API_KEY", "hunter2-key")
    secrets = [Secret.parse(f"id=tok,src={tmp_path / 'tok'}"), Secret.parse("id=api,env=API_KEY")]
    seen: list[str] = []
    logs = _Logs(_secret_values(secrets), seen.append)
    logs.add("auth with hunter2-key then line-two-secret")
    assert "hunter2-key" not in logs.text() and "line-two-secret" not in logs.text()
    assert seen[0].endswith("auth with *** then ***")
    assert seen[0].startswith("[") and "s] " in seen[0]  # elapsed-time prefix


def test_secret_file_is_private_and_holds_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "value-123")
    path = _secret_file(tmp_path / "secrets", Secret.parse("id=api,env=API_KEY"))
    assert path.read_text() == "value-123"
    assert (tmp_path / "secrets").stat().st_mode & 0o077 == 0  # no other host user can reach it


def test_code_hash_depends_on_names_and_contents_only() -> None:
    a = code_hash({"train.py": "1" * 64, "util.py": "2" * 64})
    assert a == code_hash({"util.py": "2" * 64, "train.py": "1" * 64})
    assert a != code_hash({"train.py": "1" * 64, "util.py": "3" * 64})
    assert a.startswith("sha256:") and code_hash({}) == ""


def test_only_new_or_changed_workdir_files_are_captured(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    (app / "train.py").write_text("code")
    (app / "pkg" / "cfg.yaml").write_text("a: 1")
    before = {"train.py": hash_file(app / "train.py")[0], "pkg/cfg.yaml": hash_file(app / "pkg" / "cfg.yaml")[0]}
    (app / "pkg" / "cfg.yaml").write_text("a: 2")
    (app / "mlruns" / "0").mkdir(parents=True)
    (app / "mlruns" / "0" / "metric").write_text("0.9")
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"x")
    assert [rel for rel, _ in changed_files(app, before)] == ["mlruns/0/metric", "pkg/cfg.yaml"]


def test_captured_files_join_outputs_and_clashes_go_under_workdir(tmp_path: Path) -> None:
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "model.joblib").write_text("from outputs")
    app = tmp_path / "app"
    app.mkdir()
    (app / "model.joblib").write_text("from cwd")
    (app / "extra.txt").write_text("e")
    merged = _collect(tmp_path, [("model.joblib", app / "model.joblib"), ("extra.txt", app / "extra.txt")])
    assert (merged / "model.joblib").read_text() == "from outputs"
    assert (merged / "workdir" / "model.joblib").read_text() == "from cwd"
    assert (merged / "extra.txt").read_text() == "e"
    assert _collect(tmp_path, []) == tmp_path / "outputs"


def test_docker_cp_tar_is_unpacked_without_links_or_escapes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("app/train.py", b"print(1)"), ("app/sub/x.txt", b"x"), ("app/../evil", b"e")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("app/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        _extract(tar, tmp_path / "app")
    assert (tmp_path / "app" / "train.py").read_text() == "print(1)"
    assert (tmp_path / "app" / "sub" / "x.txt").read_text() == "x"
    assert not (tmp_path / "evil").exists() and not (tmp_path / "app" / "passwd").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"memory": "lots"}, "bad --memory 'lots'"),
    ({"cpus": 0.0}, "bad --cpus 0.0"),
    ({"timeout": -1.0}, "--timeout must be a positive number"),
    ({"params": {"c": "1", "C": "2"}}, "both become PARAM_C"),
])
def test_bad_limits_and_params_fail_before_the_engine_is_touched(tmp_path: Path, kwargs: dict, message: str) -> None:
    from dockyard.train import train

    project = tmp_path / "p"
    project.mkdir()
    (project / "dockyard.yaml").write_text("name: p\ntrain:\n  command: python train.py\n")
    with pytest.raises(UsageError) as info:
        train(project, None, **kwargs)  # type: ignore[arg-type]  # no engine: it must not be reached
    assert message in info.value.problem
