"""The registry client against a small real HTTP server in-process (loopback, ephemeral port):
expired bearer tokens are refreshed, identity tokens are traded for access tokens, 429/5xx are
retried with backoff, and immutable tags are named as such."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import RegistryError
from dockyard.registry import Credentials, Manifest, RegistryClient, _move_alias, load_credentials


class FakeRegistry(BaseHTTPRequestHandler):
    """A Distribution API subset with a token service: tokens expire after ``state['ttl']`` uses."""

    state: dict[str, Any] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _token_request(self, form: dict[str, str]) -> None:
        st = self.state
        st["token_requests"].append(form)
        auth = self.headers.get("Authorization", "")
        ok = (form.get("grant_type") == "refresh_token" and form.get("refresh_token") == "refresh-123") or \
            auth == "Basic " + base64.b64encode(b"alice:secret").decode()
        if not ok:
            return self._reply(401, b'{"details":"bad credentials"}')
        st["issued"] += 1
        token = f"tok{st['issued']}"
        st["valid"][token] = st["ttl"]
        key = "access_token" if form.get("grant_type") else "token"
        self._reply(200, json.dumps({key: token}).encode())

    def do_POST(self) -> None:  # noqa: N802
        if self.path.startswith("/token"):
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            return self._token_request(form)
        self._reply(404)

    def do_GET(self) -> None:  # noqa: N802
        st = self.state
        if self.path.startswith("/token"):
            return self._token_request(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)))
        if st["fail_next"]:
            code = st["fail_next"].pop(0)
            st["failures_served"] += 1
            return self._reply(code, b"{}", {"Retry-After": "0"} if code == 429 else None)
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if st["valid"].get(token, 0) <= 0:
            realm = f"http://{self.headers['Host']}/token"
            return self._reply(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake"'})
        st["valid"][token] -= 1
        self._reply(200, json.dumps({"name": "demo", "tags": ["1", "2"]}).encode(),
                    {"Content-Type": "application/json"})

    def do_PUT(self) -> None:  # noqa: N802
        self._reply(400, json.dumps({"errors": [{"code": "TAG_INVALID",
                                                  "message": "The tag 'production' already exists and cannot be "
                                                             "overwritten because the repository is immutable."}]}).encode())


@pytest.fixture
def registry() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"token_requests": [], "issued": 0, "valid": {}, "ttl": 1, "fail_next": [],
                             "failures_served": 0}
    handler = type("Handler", (FakeRegistry,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def test_an_expired_bearer_token_is_refreshed_not_reported_as_a_wrong_password(registry: tuple[str, dict[str, Any]]) -> None:
    host, state = registry
    client = RegistryClient(host, credentials=Credentials("alice", "secret"))
    assert client.tags("demo") == ["1", "2"]  # token 1, used once: now expired
    assert client.tags("demo") == ["1", "2"]  # 401 with a token -> fresh token 2
    assert state["issued"] == 2


def test_wrong_password_is_still_a_refusal(registry: tuple[str, dict[str, Any]]) -> None:
    host, _ = registry
    with pytest.raises(RegistryError, match="refused"):
        RegistryClient(host, credentials=Credentials("alice", "nope")).tags("demo")


def test_identity_token_from_docker_config_is_traded_for_an_access_token(
        registry: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    host, state = registry
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(b"00000000-0000:").decode(),
                                                   "identitytoken": "refresh-123"}}}))
    creds = load_credentials(host, config)
    assert creds is not None and creds.identity_token == "refresh-123" and creds.password == ""
    assert RegistryClient(host, credentials=creds).tags("demo") == ["1", "2"]
    form = state["token_requests"][-1]
    assert form["grant_type"] == "refresh_token" and form["service"] == "fake" and form["scope"] == "repository:demo:pull"


@pytest.mark.parametrize("codes", [[429], [503, 502], [500, 429, 504]])
def test_429_and_5xx_are_retried_with_backoff(registry: tuple[str, dict[str, Any]], codes: list[int]) -> None:
    host, state = registry
    state["ttl"] = 10
    state["fail_next"] = list(codes)
    client = RegistryClient(host, credentials=Credentials("alice", "secret"), backoff_s=0.01)
    start = time.monotonic()
    assert client.tags("demo") == ["1", "2"]
    assert state["failures_served"] == len(codes)
    assert time.monotonic() - start < 5


def test_retries_give_up_with_the_status(registry: tuple[str, dict[str, Any]]) -> None:
    host, state = registry
    state["fail_next"] = [503] * 10
    client = RegistryClient(host, credentials=Credentials("alice", "secret"), retries=2, backoff_s=0.01)
    with pytest.raises(RegistryError, match="503"):
        client.tags("demo")
    assert state["failures_served"] == 3  # the first try and two retries


def test_immutable_tag_registries_are_named_when_an_alias_cannot_move(registry: tuple[str, dict[str, Any]]) -> None:
    host, _ = registry
    client = RegistryClient(host, credentials=Credentials("alice", "secret"))
    manifest = Manifest("sha256:" + "0" * 64, "application/vnd.oci.image.manifest.v1+json", b"{}")
    with pytest.raises(RegistryError, match="immutable") as info:
        _move_alias(client, "demo", "production", manifest)
    assert "version tag" in info.value.fix
