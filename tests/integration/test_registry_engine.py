"""Push, pull, aliases and auth against a REAL registry: Debian's docker-registry (Distribution),
started on 127.0.0.1 by these tests (once open, once with htpasswd auth) and stopped at the end.
What the tests check about aliases they read through the registry's own HTTP API."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dockyard import project, registry
from dockyard.engine import TEST_LABEL, Engine, RunSpec
from dockyard.errors import RegistryError, RunError
from dockyard.serving import predict, wait_ready

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "tiny"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
USER, PASSWORD = "dockyard", "s3cret-horse-battery"


# -- a real registry ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    log: Path

    def api(self, path: str, method: str = "GET", auth: tuple[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Raw HTTP against the registry, independent of dockyard's client."""
        req = urllib.request.Request(f"http://{self.host}{path}", method=method, headers={"Accept": ", ".join(registry.MANIFEST_TYPES)})
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def tags(self, repo: str) -> list[str]:
        return list(json.loads(self.api(f"/v2/{repo}/tags/list")[2])["tags"])

    def digest(self, repo: str, tag: str) -> str:
        status, headers, _ = self.api(f"/v2/{repo}/manifests/{tag}", method="HEAD")
        assert status == 200, f"HEAD {repo}:{tag} -> {status}"
        return headers["Docker-Content-Digest"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(tmp: Path, htpasswd: str | None = None, auth: Sequence[str] = ()) -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        if IN_CI:
            pytest.fail("CI needs docker-registry: apt-get install -y docker-registry apache2-utils")
        pytest.skip("docker-registry is not installed: apt-get install -y docker-registry apache2-utils")
    port = free_port()
    config = [
        "version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:", f"    rootdirectory: {tmp / 'data'}",
        "http:", f"  addr: 127.0.0.1:{port}",
    ]
    if htpasswd:
        (tmp / "htpasswd").write_text(htpasswd)
        config += ["auth:", "  htpasswd:", "    realm: dockyard-test", f"    path: {tmp / 'htpasswd'}"]
    config += list(auth)
    (tmp / "config.yml").write_text("\n".join(config) + "\n")
    log = tmp / "registry.log"
    with log.open("w") as out:
        proc = subprocess.Popen([binary, "serve", str(tmp / "config.yml")], stdout=out, stderr=subprocess.STDOUT)
    reg = Registry(f"127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 20
        while reg_status(reg) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield reg
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def reg_status(reg: Registry) -> int | None:
    try:
        return reg.api("/v2/")[0]
    except OSError:
        return None


@pytest.fixture(scope="session")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from start_registry(tmp_path_factory.mktemp("registry-open"))


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is not installed: apt-get install -y apache2-utils")
    entry = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True).stdout
    yield from start_registry(tmp_path_factory.mktemp("registry-auth"), htpasswd=entry)


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Docker config dir, so tests never read or write the user's credentials."""
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    return cfg


# -- images these tests make --------------------------------------------------------------------
@pytest.fixture
def image_name(engine: Engine) -> Iterator[str]:
    """A unique repository name; every local tag of it (and its registry copies) is removed after."""
    name = f"dockyard-test-{uuid.uuid4().hex[:10]}"
    yield name
    refs = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    for ref in refs:
        if ref.rpartition(":")[0].endswith(name):
            engine.remove_image(ref, force=True)


@pytest.fixture(scope="module")
def tiny_image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tiny fixture project's serve image (a tag: BuildKit's FROM takes names, not ids), built once."""
    dest = tmp_path_factory.mktemp("tiny") / "tiny"
    shutil.copytree(FIXTURE, dest)
    tag = f"dockyard-test-tiny-{uuid.uuid4().hex[:8]}:base"
    project.build(dest, engine, tag=tag, target="serve")
    yield tag
    engine.remove_image(tag, force=True)


def version_of(engine: Engine, base: str, ref: str, tmp_path: Path, **metrics: float) -> str:
    """A distinct image: ``base`` plus the test label and metric labels (LABEL-only build)."""
    ctx = tmp_path / f"ctx-{uuid.uuid4().hex[:6]}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\n")
    labels = {TEST_LABEL: "1", "io.dockyard.marker": ref, **{f"io.dockyard.metrics.{k}": str(v) for k, v in metrics.items()}}
    return engine.build(ctx, ctx / "Dockerfile", ref, labels=labels).image_id


def dockyard(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], check=False, input=stdin, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def serve_prediction(engine: Engine, image: str, inputs: dict[str, object]) -> object:
    port = free_port()
    cid = engine.start(RunSpec(image=image, ports=((port, 8080),), labels={TEST_LABEL: "1"}, remove=False))
    try:
        try:
            wait_ready(f"http://127.0.0.1:{port}", 90)
        except RunError as exc:
            raise AssertionError(f"{image} did not serve: {exc}\n{engine.logs(cid, tail=20)}") from None
        return predict(f"http://127.0.0.1:{port}", inputs)
    finally:
        engine.remove_container(cid)


# -- open registry -------------------------------------------------------------------------------
def test_push_remove_pull_serves_identical_predictions(
    engine: Engine, open_registry: Registry, tiny_image: str, image_name: str, tmp_path: Path
) -> None:
    local_id = version_of(engine, tiny_image, f"{image_name}:1", tmp_path, accuracy=0.91)
    inputs = {"x": [1.0, 2.0, 3.0]}
    before = serve_prediction(engine, f"{image_name}:1", inputs)

    pushed = dockyard("push", f"{image_name}:1", "--registry", f"{open_registry.host}/team", "--json")
    assert pushed.returncode == 0, pushed.stderr
    digest = json.loads(pushed.stdout)["digest"]
    assert digest == open_registry.digest(f"team/{image_name}", "1")

    engine.remove_image(f"{image_name}:1", force=True)
    engine.remove_image(f"{open_registry.host}/team/{image_name}:1", force=True)
    assert not engine.image_exists(local_id)

    pulled = registry.pull(engine, f"{image_name}:1", f"{open_registry.host}/team")
    assert pulled.digest == digest
    assert pulled.image_id == local_id  # content-addressed: the very same image came back
    after = serve_prediction(engine, f"{image_name}:1", inputs)
    assert after == before
    assert after["output"] == pytest.approx(0.5 * 1 - 1.25 * 2 + 2.0 * 3 + 0.125)  # type: ignore[index]


def test_pull_never_retags_over_a_local_image_another_project_owns(
    engine: Engine, open_registry: Registry, tiny_image: str, image_name: str, tmp_path: Path
) -> None:
    """Names are per project (docs/names.md): a pulled NAME:1 does not silently replace a different
    local NAME:1 that a project folder owns (here: the tiny copy its labels name); --replace does."""
    remote = f"{open_registry.host}/team/{image_name}:1"
    pushed_id = version_of(engine, tiny_image, f"{image_name}:1", tmp_path, accuracy=0.91)
    registry.push(engine, f"{image_name}:1", f"{open_registry.host}/team")
    engine.remove_image(f"{image_name}:1", force=True)
    local_id = version_of(engine, tiny_image, f"{image_name}:1", tmp_path, accuracy=0.5)  # another image
    assert local_id != pushed_id

    refused = dockyard("pull", f"{image_name}:1", "--registry", f"{open_registry.host}/team")

    assert refused.returncode == 1, refused.stderr
    assert f"error: image {image_name}:1 belongs to the project in " in refused.stderr
    assert f"the pulled image stays as {remote}" in refused.stderr and "--replace" in refused.stderr
    assert engine.image_id(f"{image_name}:1") == local_id and engine.image_id(remote) == pushed_id
    taken = dockyard("pull", f"{image_name}:1", "--registry", f"{open_registry.host}/team", "--replace")
    assert taken.returncode == 0, taken.stderr
    assert engine.image_id(f"{image_name}:1") == pushed_id


def test_promote_and_rollback_move_the_alias_in_the_registry(
    engine: Engine, open_registry: Registry, tiny_image: str, image_name: str, tmp_path: Path
) -> None:
    reg = open_registry.host
    for n, acc in ((1, 0.80), (2, 0.85), (3, 0.90)):
        version_of(engine, tiny_image, f"{image_name}:{n}", tmp_path, accuracy=acc)
        registry.push(engine, f"{image_name}:{n}", reg)
    d1, d2, d3 = (open_registry.digest(image_name, str(n)) for n in (1, 2, 3))
    assert len({d1, d2, d3}) == 3

    for n in (1, 2, 3):
        out = dockyard("promote", f"{image_name}:{n}", "--as", "production", "--registry", reg)
        assert out.returncode == 0, out.stderr
        assert open_registry.digest(image_name, "production") == (d1, d2, d3)[n - 1]
    assert "production" in open_registry.tags(image_name)

    out = dockyard("rollback", image_name, "--alias", "production", "--registry", reg)
    assert out.returncode == 0, out.stderr
    assert open_registry.digest(image_name, "production") == d2
    registry.rollback(image_name, "production", reg)
    assert open_registry.digest(image_name, "production") == d1
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(image_name, "production", reg)
    assert open_registry.digest(image_name, "production") == d1
    # every version is still there: promotion and rollback only move the alias
    assert [open_registry.digest(image_name, str(n)) for n in (1, 2, 3)] == [d1, d2, d3]

    listed = json.loads(dockyard("images", image_name, "--registry", reg, "--json").stdout)
    remote = {row["version"]: row for row in listed if row["where"] == reg}
    assert set(remote) == {"1", "2", "3"}  # the alias history tags are hidden
    assert remote["1"]["aliases"] == ["production"] and remote["3"]["aliases"] == []
    assert remote["3"]["metrics"] == {"accuracy": "0.9"}
    local = {row["version"]: row for row in listed if row["where"] == "local"}
    assert set(local) == {"1", "2", "3"} and local["2"]["metrics"] == {"accuracy": "0.85"}


def test_unreachable_registry_says_which_host_and_keeps_the_local_image(
    engine: Engine, tiny_image: str, image_name: str, tmp_path: Path
) -> None:
    version_of(engine, tiny_image, f"{image_name}:1", tmp_path)
    closed = f"127.0.0.1:{free_port()}"
    out = dockyard("push", f"{image_name}:1", "--registry", closed)
    assert out.returncode == 2
    assert f"cannot reach registry {closed}: connection refused" in out.stderr
    assert "docker-registry serve" in out.stderr  # how to start one
    assert engine.image_exists(f"{image_name}:1")


def test_pulling_an_unknown_tag_lists_the_tags_that_exist(
    engine: Engine, open_registry: Registry, tiny_image: str, image_name: str, tmp_path: Path
) -> None:
    version_of(engine, tiny_image, f"{image_name}:1", tmp_path)
    registry.push(engine, f"{image_name}:1", open_registry.host)
    out = dockyard("pull", f"{image_name}:7", "--registry", open_registry.host)
    assert out.returncode == 2
    assert "has no tag '7' (it has: 1)" in out.stderr
    with pytest.raises(RegistryError, match="has no images"):
        registry.pull(engine, f"{image_name}-never-pushed:1", open_registry.host)
    with pytest.raises(RegistryError, match="has no tag 'nope'"):
        registry.promote(f"{image_name}:nope", "production", open_registry.host)


def test_prune_keeps_newest_aliased_and_running_versions(
    engine: Engine, tiny_image: str, image_name: str, tmp_path: Path
) -> None:
    for n in (1, 2, 3, 4):
        version_of(engine, tiny_image, f"{image_name}:{n}", tmp_path)
    engine.tag(f"{image_name}:1", f"{image_name}:production")
    cid = engine.start(RunSpec(image=f"{image_name}:2", command=("python3", "-c", "import time; time.sleep(300)"),
                               labels={TEST_LABEL: "1"}, remove=False))
    try:
        res = registry.prune(engine, image_name, keep=1)
    finally:
        engine.remove_container(cid)
    assert res.removed == (f"{image_name}:3",)
    kept = dict(res.kept)
    assert kept[f"{image_name}:4"] == "among the newest"
    assert kept[f"{image_name}:1"].startswith("aliased as production")
    assert kept[f"{image_name}:2"] == "used by a running container"
    assert not engine.image_exists(f"{image_name}:3")
    assert all(engine.image_exists(f"{image_name}:{t}") for t in ("1", "2", "4", "production"))


# -- registry with htpasswd auth ---------------------------------------------------------------------
def test_wrong_password_is_refused_with_exit_2_and_nothing_is_stored(
    engine: Engine, auth_registry: Registry, docker_config: Path
) -> None:
    out = dockyard("login", auth_registry.host, "-u", USER, "--password-stdin", stdin="wrong-password\n")
    assert out.returncode == 2
    assert f"refused the credentials for user '{USER}'" in out.stderr
    assert "dockyard login" in out.stderr
    assert "wrong-password" not in out.stderr + out.stdout
    assert not (docker_config / "config.json").exists() or auth_registry.host not in (docker_config / "config.json").read_text()


def test_login_takes_the_password_from_stdin_only(auth_registry: Registry, docker_config: Path) -> None:
    out = dockyard("login", auth_registry.host, "-u", USER)
    assert out.returncode == 1
    assert "stdin only" in out.stderr


def test_push_needs_login_then_works_with_stored_credentials(
    engine: Engine, auth_registry: Registry, docker_config: Path, tiny_image: str, image_name: str, tmp_path: Path
) -> None:
    version_of(engine, tiny_image, f"{image_name}:1", tmp_path)
    refused = dockyard("push", f"{image_name}:1", "--registry", auth_registry.host)
    assert refused.returncode == 2
    assert "no credentials" in refused.stderr and "dockyard login" in refused.stderr
    assert engine.image_exists(f"{image_name}:1")  # a failed push deletes nothing local

    login = dockyard("login", auth_registry.host, "-u", USER, "--password-stdin", stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    stored = json.loads((docker_config / "config.json").read_text())
    assert auth_registry.host in stored["auths"]  # no helper configured: docker's own base64 entry

    pushed = dockyard("push", f"{image_name}:1", "--registry", auth_registry.host, "--quiet")
    assert pushed.returncode == 0, pushed.stderr
    assert auth_registry.api(f"/v2/{image_name}/tags/list")[0] == 401  # the registry really demands auth
    status, _, body = auth_registry.api(f"/v2/{image_name}/tags/list", auth=(USER, PASSWORD))
    assert status == 200 and json.loads(body)["tags"] == ["1"]
    assert registry.RegistryClient(auth_registry.host).tags(image_name) == ["1"]  # creds from the config
    assert pushed.stdout.strip() == registry.RegistryClient(auth_registry.host).head(image_name, "1")


def test_login_with_a_credential_helper_keeps_the_password_out_of_config_json(
    engine: Engine, auth_registry: Registry, docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    tiny_image: str, image_name: str,
) -> None:
    # A real helper program speaking docker's credential protocol, storing into a file of its own.
    vault = tmp_path / "vault.json"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-dockyardtest"
    helper.write_text(
        "#!/bin/sh\n"
        f'case "$1" in\n  store) cat > "{vault}" ;;\n'
        f'  get) read host; [ -s "{vault}" ] && cat "{vault}" || {{ echo "credentials not found in native keychain"; exit 1; }} ;;\n'
        f'  erase) rm -f "{vault}" ;;\n  list) echo "{{}}" ;;\nesac\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "dockyardtest"}))

    out = dockyard("login", auth_registry.host, "-u", USER, "--password-stdin", stdin=PASSWORD)
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in (docker_config / "config.json").read_text()
    assert json.loads(vault.read_text())["Secret"] == PASSWORD

    version_of(engine, tiny_image, f"{image_name}:1", tmp_path)
    pushed = dockyard("push", f"{image_name}:1", "--registry", auth_registry.host, "--quiet")
    assert pushed.returncode == 0, pushed.stderr
    assert registry.RegistryClient(auth_registry.host).tags(image_name) == ["1"]  # creds via the helper


# -- registry with token (Bearer) auth, as Harbor, GitLab and ECR do it ------------------------------
TOKEN_ISSUER, TOKEN_SERVICE = "dockyard-test-issuer", "dockyard-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """A real Docker token service: Basic credentials in, a JWT out (RS256, signed by `openssl` with
    a key whose self-signed certificate the registry is configured to trust, sent as ``x5c``)."""

    def __init__(self, tmp: Path) -> None:
        self.key, self.cert = tmp / "token.key", tmp / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=dockyard-test-token"],
                       capture_output=True, check=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             capture_output=True, check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.issued: list[tuple[str, tuple[str, ...]]] = []  # (user, scopes) of every token handed out
        self.refused = 0
        self.next_ttls: list[int] = []  # seconds to expiry of the next tokens (default 300)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = service.check(self.headers.get("Authorization", ""))
                if user is None:
                    service.refused += 1
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
                    return
                scopes = tuple(query.get("scope", []))
                ttl = service.next_ttls.pop(0) if service.next_ttls else 300
                body = json.dumps({"token": service.sign(user, query.get("service", [""])[0], scopes, ttl),
                                   "expires_in": max(ttl, 1)}).encode()
                service.issued.append((user, scopes))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def check(header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if (user, password) == (USER, PASSWORD) else None

    def sign(self, user: str, audience: str, scopes: Sequence[str], ttl: int = 300) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": TOKEN_ISSUER, "sub": user, "aud": audience, "iat": now, "nbf": now - 90, "exp": now + ttl,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), capture_output=True, check=True).stdout
        return f"{signing_input}.{_b64url(signature)}"


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenService]]:
    tmp = tmp_path_factory.mktemp("registry-token")
    tokens = TokenService(tmp)
    auth = ["auth:", "  token:", f"    realm: {tokens.realm}", f"    service: {TOKEN_SERVICE}",
            f"    issuer: {TOKEN_ISSUER}", f"    rootcertbundle: {tokens.cert}"]
    try:
        for reg in start_registry(tmp, auth=auth):
            yield reg, tokens
    finally:
        tokens.server.shutdown()


def test_token_auth_registry_login_push_list_and_promote_with_bearer_tokens(
    engine: Engine, token_registry: tuple[Registry, TokenService], docker_config: Path, tiny_image: str,
    image_name: str, tmp_path: Path,
) -> None:
    reg, tokens = token_registry
    status, headers, _ = reg.api("/v2/")
    challenge = {k.lower(): v for k, v in headers.items()}["www-authenticate"]
    assert status == 401 and challenge.startswith(f'Bearer realm="{tokens.realm}"'), challenge

    wrong = dockyard("login", reg.host, "-u", USER, "--password-stdin", stdin="not-it\n")
    assert wrong.returncode == 2 and f"refused the credentials for user '{USER}'" in wrong.stderr, wrong.stderr
    assert tokens.refused >= 1
    login = dockyard("login", reg.host, "-u", USER, "--password-stdin", stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr

    for n in (1, 2):  # the engine pushes through the same token service
        version_of(engine, tiny_image, f"{image_name}:{n}", tmp_path)
        pushed = dockyard("push", f"{image_name}:{n}", "--registry", reg.host, "--quiet")
        assert pushed.returncode == 0, pushed.stderr
    client = registry.RegistryClient(reg.host)  # credentials from the private Docker config
    assert sorted(client.tags(image_name)) == ["1", "2"]
    promoted = dockyard("promote", f"{image_name}:2", "--as", "production", "--registry", reg.host)
    assert promoted.returncode == 0, promoted.stderr
    assert registry.RegistryClient(reg.host).head(image_name, "production") == client.head(image_name, "2")
    # Tokens went to the logged-in user, scoped to this repository: read (tags) and write (push, promote).
    ours = [scopes for user, scopes in tokens.issued if user == USER]
    assert (f"repository:{image_name}:pull",) in ours
    assert any(s and s[0].startswith(f"repository:{image_name}:") and "push" in s[0] for s in ours)


def test_an_expired_bearer_token_is_refreshed_against_a_real_registry(
    token_registry: tuple[Registry, TokenService],
) -> None:
    # Distribution accepts a token up to 60 s past its exp; this one has ~3 s of that grace left.
    reg, tokens = token_registry
    client = registry.RegistryClient(reg.host, credentials=registry.Credentials(USER, PASSWORD))
    tokens.next_ttls = [-57]
    before = len(tokens.issued)
    assert client.tags("never-pushed") == []  # 404 -> [], with the short-lived token
    time.sleep(5)  # now the cached token is expired for the registry
    assert client.tags("never-pushed") == []  # 401 carrying a token -> a fresh token, not "wrong password"
    assert len(tokens.issued) - before == 2
