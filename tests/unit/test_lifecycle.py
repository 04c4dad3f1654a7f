"""`dockyard ps` rows from recorded `docker inspect`/`docker stats` output (no engine needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dockyard.lifecycle import _container_row, _docker_size, human_duration, run_labels
from dockyard.runtime import contract

# Trimmed from `docker inspect` of a container started by `dockyard serve -d --port 18555`.
SERVE = {
    "Id": "9f2c1e0a7b3d5f6e8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",
    "Name": "/dockyard-serve-digits-18555",
    "State": {"Status": "running", "Running": True, "StartedAt": "2026-11-30T04:00:00.123456789Z",
              "Health": {"Status": "healthy", "FailingStreak": 0}},
    "Config": {"Labels": {
        "io.dockyard.managed": "true", "io.dockyard.role": "serve", "io.dockyard.name": "digits",
        "io.dockyard.project": "/work/digits", "io.dockyard.model-version": "3", "io.dockyard.version": "0.1.0"}},
    "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18555"}]}},
}
TRAIN = {
    "Id": "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
    "Name": "/dockyard-train-digits-20261130-040000-ab12",
    "State": {"Status": "running", "Running": True, "StartedAt": "2026-11-30T04:59:30Z"},
    "Config": {"Labels": {"io.dockyard.managed": "true", "io.dockyard.role": "train", "io.dockyard.name": "digits",
                          "io.dockyard.run-id": "20261130-040000-ab12"}},
    "NetworkSettings": {"Ports": {}},
}
NOW = datetime(2026, 11, 30, 5, 0, 0, tzinfo=UTC)


def test_a_server_row_has_url_version_health_uptime_and_usage() -> None:
    row = _container_row(SERVE, {"CPUPerc": "0.35%", "MemUsage": "41.2MiB / 512MiB"}, NOW)
    assert (row.name, row.role, row.project, row.version) == ("dockyard-serve-digits-18555", "serve", "digits", "3")
    assert row.url == "http://127.0.0.1:18555" and row.health == "healthy" and row.state == "running"
    assert row.uptime_s is not None and abs(row.uptime_s - 3599.877) < 0.01
    assert row.cpu_percent == 0.35 and row.memory_bytes == int(41.2 * (1 << 20))
    assert human_duration(row.uptime_s) == "59m59s"


def test_a_training_row_shows_its_run_id_and_no_url() -> None:
    row = _container_row(TRAIN, None, NOW)
    assert row.version == "20261130-040000-ab12" and row.url == "-" and row.health == "-"
    assert row.cpu_percent is None and row.memory_bytes is None and human_duration(row.uptime_s) == "30s"


def test_docker_stats_sizes_and_durations() -> None:
    assert _docker_size("1.5GiB") == 3 << 29 and _docker_size("0B") == 0 and _docker_size("12kB") == 12_000
    assert _docker_size("--") is None
    assert [human_duration(s) for s in (None, 5, 3 * 3600 + 300, 2 * 86400 + 7200)] == ["-", "5s", "3h05m", "2d02h"]


def test_run_labels_are_the_contracts_keys() -> None:
    labels = run_labels(Path("/p/digits"), "digits", "notebook")
    assert labels == {contract.LABEL_MANAGED: "true", contract.LABEL_ROLE: "notebook",
                      contract.LABEL_NAME: "digits", contract.LABEL_PROJECT: "/p/digits"}
