"""Hardened defaults and secret hygiene, checked on the real engine (issue 6)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dockyard import project, serving
from dockyard.engine import Engine, RunSpec

CANARY = "canary-secret-4b8e1d2f9a"


def _dockyard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


def _layer_names_and_blobs(engine: Engine, ref: str, tmp_path: Path) -> tuple[list[str], list[bytes]]:
    saved = engine.save_image(ref, tmp_path / "img.tar")
    names: list[str] = []
    blobs: list[bytes] = []
    with tarfile.open(saved) as outer:
        for member in outer.getmembers():
            if member.isfile():
                blob = outer.extractfile(member).read()  # type: ignore[union-attr]
                blobs.append(blob)
                if member.name.endswith("layer.tar"):
                    with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                        names += layer.getnames()
    return names, blobs


def assert_hardened(info: dict) -> None:  # type: ignore[type-arg]
    host = info["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] > 0 and host["Memory"] > 0 and host["NanoCpus"] > 0
    assert host["Privileged"] is False
    assert host["NetworkMode"] != "host" and host["PidMode"] != "host" and host["IpcMode"] != "host"
    assert "/tmp" in host["Tmpfs"]
    for bindings in (host.get("PortBindings") or {}).values():
        assert all(b["HostIp"] == "127.0.0.1" for b in bindings)


def test_serving_container_is_hardened_non_root_and_read_only(engine: Engine, digits_project: Path, unique_tag: str) -> None:
    subprocess.run([sys.executable, "train.py"], cwd=digits_project, check=True, capture_output=True)
    res = serving.serve(digits_project, engine, model=str(digits_project / "outputs" / "model.joblib"), port=18391, tag=unique_tag,
                        name="dockyard-test-hardened", labels={"io.dockyard.test": "1"})
    try:
        assert_hardened(engine.inspect(res.container, "container"))
        assert engine.docker("exec", res.container, "id", "-u").stdout.strip() == "10001"
        write = engine.docker("exec", res.container, "sh", "-c", "touch /probe", check=False)
        assert write.returncode != 0 and "Read-only file system" in write.stderr
        sample = json.loads((digits_project / "sample.json").read_text())
        assert serving.predict(res.url, sample) == {"output": 0}
    finally:
        engine.remove_container(res.container)


def test_detached_run_containers_get_the_same_hardening(engine: Engine, digits_project: Path) -> None:
    built = project.build(digits_project, engine, target="train")
    cid = engine.start(RunSpec(image=built.image_id, command=("sleep", "30"), name="dockyard-test-run-hardening",
                               labels={"io.dockyard.test": "1"}, remove=False))
    try:
        assert_hardened(engine.inspect(cid, "container"))
    finally:
        engine.remove_container(cid)


def test_canary_build_secret_never_reaches_history_config_layers_or_output(
    engine: Engine, digits_project: Path, unique_tag: str, tmp_path: Path
) -> None:
    # The install step can read the secret (a private index token, say) but nothing keeps it.
    cfg = digits_project / "dockyard.yaml"
    cfg.write_text(cfg.read_text() + "build_secrets:\n  - id: index_token\n    env: DOCKYARD_TEST_TOKEN\n")
    res = _dockyard("build", str(digits_project), "--target", "train", "-t", unique_tag, env={"DOCKYARD_TEST_TOKEN": CANARY})
    assert res.returncode == 0, res.stderr
    assert CANARY not in res.stdout + res.stderr
    assert CANARY not in engine.docker("history", "--no-trunc", unique_tag).stdout
    assert CANARY not in json.dumps(engine.inspect(unique_tag))
    _, blobs = _layer_names_and_blobs(engine, unique_tag, tmp_path)
    assert all(CANARY.encode() not in blob for blob in blobs)


def test_secret_in_a_dockerfile_arg_is_caught_by_scan(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM dockyard/python:3.11-slim\nARG API_TOKEN={CANARY}\nUSER 10001\n"
        "HEALTHCHECK CMD [\"true\"]\nCMD [\"python3\"]\n"
    )
    res = _dockyard("scan", str(tmp_path), "--format", "json", "--fail-on", "high")
    assert res.returncode == 4  # findings at or above --fail-on
    assert "API_TOKEN" in res.stdout
    assert CANARY not in res.stdout, "the finding names the ARG, never its value"


def test_canary_credential_files_in_a_project_never_reach_the_image(
    engine: Engine, digits_project: Path, unique_tag: str, tmp_path: Path
) -> None:
    (digits_project / ".env").write_text(f"TOKEN={CANARY}\n")
    (digits_project / "id_rsa").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY}\n")
    (digits_project / ".git").mkdir()
    (digits_project / ".git" / "config").write_text(f"[remote]\n url = https://user:{CANARY}@example.invalid\n")
    (digits_project / ".docker").mkdir()
    (digits_project / ".docker" / "config.json").write_text(json.dumps({"auths": {"r": {"auth": CANARY}}}))
    project.build(digits_project, engine, tag=unique_tag, target="train")
    names, blobs = _layer_names_and_blobs(engine, unique_tag, tmp_path)
    assert all(CANARY.encode() not in blob for blob in blobs)
    assert not [n for n in names if n.startswith("app/") and n.split("/")[1] in (".env", "id_rsa", ".git", ".docker")]
    assert "app/train.py" in names


def test_dangerous_run_requests_are_refused_before_any_build(digits_project: Path) -> None:
    res = _dockyard("run", str(digits_project), "-v", "/etc:/host-etc", "--", "true")
    assert res.returncode == 1
    assert "refusing to mount /etc" in res.stderr and "--allow-dangerous-mounts" in res.stderr


def test_serve_refuses_a_pickle_it_cannot_scan(engine: Engine, digits_project: Path) -> None:
    (digits_project / "opaque.joblib").write_bytes(b"\x80\x05" + bytes(range(256)) * 4)
    res = _dockyard("serve", str(digits_project), "--model", str(digits_project / "opaque.joblib"), "--port", "18394", "-d")
    assert res.returncode == 1
    assert "refusing to serve opaque.joblib" in res.stderr and "could not be scanned" in res.stderr


def test_serve_refuses_a_malicious_pickle(engine: Engine, digits_project: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            import os

            return (os.system, ("echo pwned",))

    (digits_project / "evil.joblib").write_bytes(pickle.dumps(Evil()))
    res = _dockyard("serve", str(digits_project), "--model", str(digits_project / "evil.joblib"), "--port", "18392", "-d")
    assert res.returncode == 1
    assert "refusing to serve evil.joblib" in res.stderr and "--allow-unsafe-model" in res.stderr


@pytest.mark.parametrize(("payload", "gadget"), [
    ("uuid_get_command_stdout", "uuid._get_command_stdout"),
    ("pkgutil_resolve_name", "pkgutil.resolve_name"),
    ("operator_methodcaller", "_operator.methodcaller"),
])
def test_serve_refuses_the_published_deny_list_bypasses(engine: Engine, digits_project: Path, payload: str,
                                                         gadget: str) -> None:
    # picklescan GHSA-vvpj-8cmc-gx39 / issue 66: these passed the old deny-list gate and ran a command.
    sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
    import model_corpus

    (digits_project / "model.joblib").write_bytes(model_corpus.MALICIOUS[payload])
    res = _dockyard("serve", str(digits_project), "--model", str(digits_project / "model.joblib"), "--port", "18395", "-d")
    assert res.returncode == 1
    assert "refusing to serve model.joblib" in res.stderr and gadget in res.stderr
    assert not Path("/tmp/dockyard-pwned").exists()


def test_build_refuses_to_bake_a_refused_pickle_into_an_image(engine: Engine, digits_project: Path) -> None:
    # An image is pushed and deployed elsewhere: `build --model` applies the same gate as serve.
    sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
    import model_corpus

    (digits_project / "model.pkl").write_bytes(model_corpus.MALICIOUS["operator_methodcaller"])
    res = _dockyard("build", str(digits_project), "--target", "serve", "--model", str(digits_project / "model.pkl"))
    assert res.returncode == 1
    assert "refusing to serve model.pkl" in res.stderr and "_operator.methodcaller" in res.stderr
    assert "--allow-unsafe-model" in res.stderr


def test_serve_secret_is_a_read_only_file_and_nowhere_else(engine: Engine, digits_project: Path, unique_tag: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.engine import Secret

    subprocess.run([sys.executable, "train.py"], cwd=digits_project, check=True, capture_output=True)
    monkeypatch.setenv("DOCKYARD_TEST_SERVE_SECRET", CANARY)
    res = serving.serve(digits_project, engine, model=str(digits_project / "outputs" / "model.joblib"), port=18393, tag=unique_tag,
                        name="dockyard-test-serve-secret", labels={"io.dockyard.test": "1"},
                        secrets=[Secret.parse("id=api_key,env=DOCKYARD_TEST_SERVE_SECRET")])
    try:
        inside = engine.docker("exec", res.container, "sh", "-c", "cat /run/secrets/api_key; echo; stat -c %a /run/secrets/api_key")
        assert inside.stdout.split() == [CANARY, "400"]
        assert CANARY not in json.dumps(engine.inspect(res.container, "container"))
        assert CANARY not in engine.logs(res.container)
        assert CANARY not in json.dumps(engine.inspect(res.image))
        write = engine.docker("exec", res.container, "sh", "-c", "echo x > /run/secrets/api_key", check=False)
        assert write.returncode != 0
    finally:
        engine.remove_container(res.container)


@pytest.mark.parametrize(("flags", "needle", "allow"), [
    (["--privileged"], "privileged", "--allow-privileged"),
    (["--host-network"], "host network", "--allow-host-namespaces"),
    (["--host-pid"], "host pid", "--allow-host-namespaces"),
    (["--host-ipc"], "host ipc", "--allow-host-namespaces"),
    (["-v", "/:/host"], "refusing to mount /", "--allow-dangerous-mounts"),
    (["-v", "/proc:/p"], "refusing to mount /proc", "--allow-dangerous-mounts"),
    (["-v", "/sys:/s"], "refusing to mount /sys", "--allow-dangerous-mounts"),
])
def test_risky_run_requests_need_a_flag_that_names_the_risk(digits_project: Path, flags: list[str], needle: str,
                                                            allow: str) -> None:
    res = _dockyard("run", str(digits_project), *flags, "--", "true")
    assert res.returncode == 1
    assert needle in res.stderr and allow in res.stderr


def test_an_acknowledged_risky_request_is_honoured(engine: Engine, digits_project: Path) -> None:
    res = _dockyard("run", str(digits_project), "--host-pid", "--allow-host-namespaces", "-q", "--",
                    "sh", "-c", "test -d /proc/1 && cat /proc/1/comm")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() != "sh", "with the host PID namespace, PID 1 is the host's init, not our shell"
