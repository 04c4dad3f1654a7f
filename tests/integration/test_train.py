"""`dockyard train` against a real engine: versions with lineage, diffs, artifact capture from
the working directory, and every way a run can fail (exit code, OOM, timeout, Ctrl-C, bad
--data), plus secrets that never leak into the container config, logs or the store."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import copy_example, project_name, unique_name
from dockyard.engine import Engine, Secret
from dockyard.errors import RunError, UsageError
from dockyard.store import Store
from dockyard.train import train


def set_train_command(project: Path, command: str) -> None:
    config = project / "dockyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["train"]["command"] = command
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def dockyard(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


def containers_of_run(engine: Engine, run_id: str) -> list[dict[str, str]]:
    return engine.containers([f"label=io.dockyard.run-id={run_id}"])


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    return Store(tmp_path / "store")


TEST_LABELS = {"io.dockyard.test": "1"}


def test_digits_trains_into_version_1_with_model_metrics_and_lineage(
    engine: Engine, digits_project: Path, store: Store
) -> None:
    res = train(digits_project, engine, store=store, labels=TEST_LABELS)
    v = res.version
    assert v.ref == f"{project_name(digits_project)}:1" and v.project == str(digits_project.resolve())
    assert {a.path for a in v.artifacts} == {"model.joblib", "metrics.json"}
    assert all(len(a.sha256) == 64 and a.size > 0 for a in v.artifacts)
    assert 0.8 < v.metrics["accuracy"] <= 1.0
    assert v.image.id == res.image_id and v.image.id.startswith("sha256:")
    assert v.code_hash.startswith("sha256:")
    assert v.resources.memory == "2g" and v.resources.cpus == 2.0
    assert v.exit_status == 0 and v.ended >= v.started
    assert v.logs is not None
    assert "C=1.0 accuracy=" in (store.blobs_dir / v.logs.sha256).read_text()
    assert res.captured == ()  # digits writes only to $DOCKYARD_OUTPUTS
    assert not containers_of_run(engine, res.run_id)


def test_changed_param_makes_version_2_and_models_diff_shows_param_and_metric(
    engine: Engine, digits_project: Path, store: Store
) -> None:
    name = project_name(digits_project)
    first = dockyard("train", str(digits_project), "--param", "C=1.0", "--store", str(store.root), "-q")
    assert first.returncode == 0, first.stderr
    assert f"trained {name}:1 (accuracy=" in first.stdout
    second = dockyard("train", str(digits_project), "--param", "C=0.001", "--store", str(store.root), "-q")
    assert second.returncode == 0, second.stderr
    assert f"trained {name}:2" in second.stdout
    assert store.get(f"{name}:2").params == {"C": "0.001"}
    diff = dockyard("models", "diff", f"{name}:1", f"{name}:2", "--store", str(store.root))
    assert diff.returncode == 0, diff.stderr
    assert "~ C: 1.0 -> 0.001" in diff.stdout
    metrics_section = diff.stdout.split("metrics:", 1)[1]
    assert "~ accuracy:" in metrics_section.splitlines()[1]
    listing = dockyard("models", "list", "--store", str(store.root), "--json")
    assert json.loads(listing.stdout)[0]["versions"] == [1, 2]


def test_nonzero_exit_propagates_its_code_keeps_logs_and_makes_no_version(
    engine: Engine, digits_project: Path, store: Store
) -> None:
    set_train_command(digits_project, "python -c \"print('loading batch 17'); raise SystemExit(7)\"")
    res = dockyard("train", str(digits_project), "--store", str(store.root), "-q")
    assert res.returncode == 7
    assert "exited with status 7" in res.stderr
    assert "loading batch 17" in res.stderr.split("error:", 1)[1]  # the log tail is shown with the error
    assert store.list_models() == []
    [failed] = store.failed_runs(project_name(digits_project))
    assert failed.reason == "exit 7" and failed.run.exit_status == 7
    assert "loading batch 17" in failed.logs_path.read_text()
    assert not containers_of_run(engine, failed.run.run_id)


def test_oom_kill_is_reported_naming_the_memory_limit(engine: Engine, digits_project: Path, store: Store) -> None:
    set_train_command(digits_project, "python -c \"x = b'1' * (500 << 20); print(len(x))\"")
    with pytest.raises(RunError) as info:
        train(digits_project, engine, store=store, memory="64m", labels=TEST_LABELS)
    assert "out of memory (memory limit 64m)" in info.value.problem
    [failed] = store.failed_runs()
    assert failed.reason == "oom-killed (memory limit 64m)"
    assert failed.run.resources.memory == "64m"
    assert store.list_models() == []
    assert not containers_of_run(engine, failed.run.run_id)


def test_timeout_stops_the_run_and_reports_it(engine: Engine, digits_project: Path, store: Store) -> None:
    set_train_command(digits_project, "echo started; sleep 60")
    started = time.monotonic()
    with pytest.raises(RunError) as info:
        train(digits_project, engine, store=store, timeout=3, labels=TEST_LABELS)
    assert "timeout after 3s" in info.value.problem
    assert time.monotonic() - started < 60  # stopped, not waited out
    [failed] = store.failed_runs()
    assert failed.reason == "timeout after 3s"
    assert "started" in failed.logs_path.read_text()
    assert not containers_of_run(engine, failed.run.run_id)


def test_missing_data_dir_is_an_error_before_any_build(engine: Engine, digits_project: Path, store: Store, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data"
    res = dockyard("train", str(digits_project), "--data", str(missing), "--store", str(store.root))
    assert res.returncode == 1
    assert f"--data {missing} does not exist" in res.stderr
    assert "fix:" in res.stderr
    assert not (digits_project / ".dockyard").exists()  # build inputs are written first thing in a build
    with pytest.raises(UsageError):
        train(digits_project, engine, data=missing, store=store)
    assert not (digits_project / ".dockyard").exists()


def test_ctrl_c_removes_the_container_records_interrupted_and_no_version(
    engine: Engine, digits_project: Path, store: Store
) -> None:
    set_train_command(digits_project, "python -c \"import time; print('epoch 1', flush=True); time.sleep(120)\"")
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", "train", str(digits_project), "--store", str(store.root), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + 300
    while "epoch 1" not in seen and time.monotonic() < deadline and proc.poll() is None:
        if sel.select(timeout=1):
            seen += proc.stderr.readline()
    assert "epoch 1" in seen, seen
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode == 130
    [failed] = store.failed_runs()
    assert failed.reason == "interrupted"
    assert "epoch 1" in failed.logs_path.read_text()
    assert not containers_of_run(engine, failed.run.run_id)
    assert store.list_models() == []


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(
    engine: Engine, digits_project: Path, store: Store
) -> None:
    sleeper = digits_project.parent / "sleeper"
    shutil.copytree(digits_project, sleeper)
    unique_name(sleeper)  # a project of its own: two folders never share a name (dockyard.names)
    set_train_command(sleeper, "python -c \"import time; print('epoch 1', flush=True); time.sleep(300)\"")
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", "train", str(sleeper), "--store", str(store.root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    seen, deadline = "", time.monotonic() + 300
    while "epoch 1" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stdout.readline()
    assert "epoch 1" in seen, seen
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait(timeout=30)
    [work] = list((store.root / "work").iterdir())
    container = f"dockyard-train-{work.name}"
    assert engine.containers([f"name={container}"], all_=False), "the killed run's container keeps running"
    # A live run's directory (its owner is this test process) must survive the sweep.
    live = store.root / "work" / "digits-live-run"
    live.mkdir()
    (live / ".owner").write_text(f"{os.getpid()}\n")

    proc2 = dockyard("train", str(digits_project), "--store", str(store.root))
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    assert f"removed the leftovers of 1 killed training run(s): {work.name}" in proc2.stderr
    assert not work.exists()
    assert not engine.containers([f"name={container}"])
    assert live.is_dir()
    assert [(m.name, m.versions) for m in store.list_models()] == [(project_name(digits_project), (1,))]


def test_secret_is_a_file_in_the_container_and_nowhere_else(
    engine: Engine, digits_project: Path, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_value, env_value = f"file-secret-{uuid.uuid4().hex}", f"env-secret-{uuid.uuid4().hex}"
    (tmp_path / "token.txt").write_text(file_value + "\n")
    monkeypatch.setenv("MY_API_KEY", env_value)
    script = ("import os, time; a = open('/run/secrets/token').read().strip();"
              " b = open('/run/secrets/api').read();"
              " print('secrets-ok', a.startswith('file-secret-') and b.startswith('env-secret-'), flush=True);"
              " print('leak attempt', a, b, flush=True); print(sorted(os.environ), flush=True);"
              " open('/outputs/model.txt', 'w').write('m'); time.sleep(3)")
    set_train_command(digits_project, f'python -c "{script}"')
    marker = uuid.uuid4().hex
    inspected: list[str] = []

    def on_line(line: str) -> None:
        if "secrets-ok" in line:
            [c] = engine.containers([f"label=io.dockyard.test-run={marker}"])
            inspected.append(engine.docker("inspect", c["ID"]).stdout)

    secrets = [Secret.parse(f"id=token,src={tmp_path / 'token.txt'}"), Secret.parse("id=api,env=MY_API_KEY")]
    res = train(digits_project, engine, store=store, secrets=secrets, on_line=on_line,
                labels={**TEST_LABELS, "io.dockyard.test-run": marker})
    logs = (store.blobs_dir / res.version.logs.sha256).read_text() if res.version.logs else ""
    assert "secrets-ok True" in logs
    assert "leak attempt *** ***" in logs
    assert inspected, "the run container was never inspected"
    for text in [*inspected, logs, *(p.read_text(errors="replace") for p in store.root.rglob("*") if p.is_file())]:
        assert file_value not in text and env_value not in text
    assert "MY_API_KEY" not in logs  # secrets are files, not environment variables


def test_log_metric_helper_works_inside_the_container(engine: Engine, digits_project: Path, store: Store) -> None:
    set_train_command(digits_project, "python -c \"from dockyard import log_metric, log_param; "
                      "log_metric('loss', 0.5, step=1); log_metric('loss', 0.25, step=2); log_param('layers', 3); "
                      "open('/outputs/weights.bin', 'wb').write(b'w')\"")
    v = train(digits_project, engine, store=store, labels=TEST_LABELS).version
    assert v.metrics == {"loss": 0.25}
    assert v.params == {"layers": "3"}


def test_reproduce_reuses_image_and_params_and_checks_the_data_fingerprint(
    engine: Engine, digits_project: Path, store: Store, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n1,2\n")
    set_train_command(digits_project, "ls $DOCKYARD_DATA > $DOCKYARD_OUTPUTS/seen.txt && echo C=$PARAM_C")
    name = project_name(digits_project)
    first = train(digits_project, engine, store=store, data=data, params={"C": "0.5"}, labels=TEST_LABELS)
    again = train(digits_project, engine, store=store, data=data, reproduce=f"{name}:1", labels=TEST_LABELS)
    assert again.version.ref == f"{name}:2"
    assert again.image_id == first.image_id
    assert again.version.params == {"C": "0.5"}
    assert again.version.data_fingerprint == first.version.data_fingerprint
    assert store.diff(f"{name}:1", f"{name}:2").artifacts_changed == ()
    (data / "rows.csv").write_text("a,b\n1,3\n")
    with pytest.raises(UsageError) as info:
        train(digits_project, engine, store=store, data=data, reproduce=f"{name}:1")
    assert first.version.data_fingerprint in info.value.problem  # names both fingerprints
    assert "sha256:" in info.value.problem.split("this run has", 1)[1]


def test_project_that_never_heard_of_dockyard_goes_init_then_train_and_its_outputs_are_captured(
    engine: Engine, tmp_path: Path, store: Store
) -> None:
    project = copy_example("mlflow-style", tmp_path)
    assert dockyard("init", str(project)).returncode == 0
    res = dockyard("train", str(project), "--store", str(store.root), "-q")
    assert res.returncode == 0, res.stderr
    name = project_name(project)  # init names it after its (unique) folder
    assert name.startswith("mlflow-style-") and f"trained {name}:1" in res.stdout
    v = store.get(f"{name}:1")
    paths = {a.path for a in v.artifacts}
    assert "model.joblib" in paths
    assert any(p.startswith("mlruns/0/") and p.endswith("/metrics/accuracy") for p in paths)
    assert not any(p in paths for p in ("train.py", "requirements.txt", "dockyard.yaml"))  # unchanged code is not an output
    assert not (project / "model.joblib").exists()  # the host project folder is never written


def test_two_trainings_at_once_make_two_distinct_versions(engine: Engine, tmp_path: Path, store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Two folders (one folder's builds share PROJECT/.dockyard), one model name: the store's
    # concurrency is the point, so both runs knowingly share the name (replace=True, dockyard.names).
    projects = [copy_example("digits", tmp_path / f"copy{i}") for i in range(2)]
    shared = project_name(projects[0])
    config = projects[1] / "dockyard.yaml"
    config.write_text(config.read_text().replace(f"name: {project_name(projects[1])}", f"name: {shared}"))
    set_train_command(projects[1], "PARAM_C=0.01 python train.py")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: train(p, engine, store=store, labels=TEST_LABELS, replace=True), projects))
    assert sorted(r.version.version for r in results) == [1, 2]
    assert len({r.run_id for r in results}) == 2
    assert [m.versions for m in store.list_models()] == [(1, 2)]
    assert store.verify() == []
