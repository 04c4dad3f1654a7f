"""Registry names, credentials from the Docker config and helpers, and HTTP error wording (no Docker)."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from dockyard.errors import RegistryError, UsageError
from dockyard.registry import (
    Credentials,
    RegistryClient,
    RegistryRef,
    _next_link,
    _parse_challenge,
    is_version_tag,
    load_credentials,
    split_ref,
)


@pytest.mark.parametrize(
    ("text", "host", "namespace", "image"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000", "", "127.0.0.1:5000/digits:3"),
        ("registry.example.com/team/ml", "registry.example.com", "team/ml", "registry.example.com/team/ml/digits:3"),
        ("https://Ghcr.io/acme/", "ghcr.io", "acme", "ghcr.io/acme/digits:3"),
        ("localhost:5000/a", "localhost:5000", "a", "localhost:5000/a/digits:3"),
    ],
)
def test_registry_ref_parses_host_port_and_namespace(text: str, host: str, namespace: str, image: str) -> None:
    ref = RegistryRef.parse(text)
    assert (ref.host, ref.namespace) == (host, namespace)
    assert ref.image("digits", "3") == image


@pytest.mark.parametrize("text", ["", "/ns", "host:port/x", "host/Bad_Upper", "ho st"])
def test_bad_registry_is_a_usage_error_with_an_example(text: str) -> None:
    with pytest.raises(UsageError, match="bad (--registry|registry namespace)") as info:
        RegistryRef.parse(text)
    assert info.value.fix


def test_split_ref_defaults_the_tag_and_refuses_bad_names() -> None:
    assert split_ref("digits") == ("digits", "latest")
    assert split_ref("team/digits:3") == ("team/digits", "3")
    with pytest.raises(UsageError, match="names a registry host") as info:
        split_ref("localhost:5000/digits:3")
    assert "--registry localhost:5000" in info.value.fix
    with pytest.raises(UsageError, match="bad image name 'Digits'"):
        split_ref("Digits:3")
    with pytest.raises(UsageError, match="bad tag"):
        split_ref("digits:-x")


def test_versions_look_like_numbers_and_everything_else_is_an_alias() -> None:
    assert all(is_version_tag(t) for t in ("3", "v1.2", "2024.06.01", "12-rc1"))
    assert not any(is_version_tag(t) for t in ("production", "latest", "staging", "1.promote.3", "x1"))


def _config(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_credentials_come_from_auths_base64_matching_host_forms(tmp_path: Path) -> None:
    auth = base64.b64encode(b"alice:pa:ss").decode()
    cfg = _config(tmp_path, {"auths": {"https://127.0.0.1:5000/v2/": {"auth": auth}}})
    assert load_credentials("127.0.0.1:5000", cfg) == Credentials("alice", "pa:ss")
    assert load_credentials("127.0.0.1:5001", cfg) is None


def _helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def test_credential_helper_is_asked_with_the_host_on_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real helper program speaking the docker-credential protocol: host on stdin, JSON out.
    _helper(tmp_path, monkeypatch, "dytest", 'read host; printf \'{"ServerURL":"%s","Username":"bob","Secret":"tok-%s"}\' "$host" "$host"\n')
    cfg = _config(tmp_path, {"credHelpers": {"reg.example.com": "dytest"},
                             "auths": {"reg.example.com": {"auth": base64.b64encode(b"stale:old").decode()}}})
    assert load_credentials("reg.example.com", cfg) == Credentials("bob", "tok-reg.example.com")


def test_creds_store_without_an_entry_falls_back_to_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _helper(tmp_path, monkeypatch, "dyempty", 'echo "credentials not found in native keychain"; exit 1\n')
    cfg = _config(tmp_path, {"credsStore": "dyempty"})
    assert load_credentials("127.0.0.1:5000", cfg) is None


def test_a_missing_credential_helper_is_named(tmp_path: Path) -> None:
    cfg = _config(tmp_path, {"credsStore": "dockyard-no-such-helper"})
    with pytest.raises(RegistryError, match="docker-credential-dockyard-no-such-helper is not installed"):
        load_credentials("127.0.0.1:5000", cfg)


def test_a_corrupt_docker_config_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read .*config.json"):
        load_credentials("127.0.0.1:5000", path)


def test_auth_challenges_and_paging_links_parse() -> None:
    kind, params = _parse_challenge('Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a:pull"')
    assert kind == "bearer" and params["realm"] == "https://auth.example.com/token" and params["service"] == "registry"
    assert _parse_challenge('Basic realm="dockyard-test"') == ("basic", {"realm": "dockyard-test"})
    assert _next_link('</v2/a/tags/list?last=9&n=1000>; rel="next"') == "/v2/a/tags/list?last=9&n=1000"
    assert _next_link(None) is None


def test_connection_refused_names_host_port_and_how_to_start_a_registry() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but never listening: connections are refused
        client = RegistryClient(f"127.0.0.1:{port}", credentials=None, timeout=5)
        with pytest.raises(RegistryError, match=f"cannot reach registry 127.0.0.1:{port}: connection refused") as info:
            client.ping()
    assert "docker-registry serve" in info.value.fix
    assert info.value.exit_code == 2


def test_loopback_registries_use_plain_http_like_docker() -> None:
    assert RegistryClient("127.0.0.1:5000").scheme == "http"
    assert RegistryClient("localhost:5000").scheme == "http"
    assert RegistryClient("registry.example.com").scheme == "https"
