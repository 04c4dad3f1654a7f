"""OCI Distribution registries: a small HTTP client for tags and manifests, plus push/pull/login
through the engine (``docker push``/``pull`` show progress and honour the daemon's settings).

Names: every pushed image is ``<registry>/<namespace>/<name>:<version>`` plus its digest.

Aliases (``production``, ``staging``...) are ordinary tags moved registry-side by PUTting a
version's manifest under the alias name: no layers move. Their history lives in the registry
too, as append-only log tags ``<alias>.promote.<seq>`` / ``<alias>.rollback.<seq>`` that point
at the manifest the alias pointed to after that step. Why there and not in a local file:
any machine (CI promotes, a person rolls back) sees the same history; the log tags keep
old manifests referenced, so registry garbage collection can never delete a rollback target;
and it needs nothing but tag PUTs, which every Distribution registry supports (tag deletion
is not portable). ``images`` hides the log tags.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from .engine import Engine, Printer
from .errors import RegistryError, UsageError
from .runtime import contract

log = logging.getLogger("dockyard.registry")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
METRIC_PREFIX = contract.LABEL_METRICS_PREFIX

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_VERSION = re.compile(r"^v?\d[\w.+-]*$")
_LOG_TAG = re.compile(r"^(?P<alias>.+)\.(?P<op>promote|rollback)\.(?P<seq>\d+)$")


# -- names ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegistryRef:
    """``HOST[:PORT][/NAMESPACE]`` as given to ``--registry``."""

    host: str  # host[:port], as docker writes it
    namespace: str = ""

    @classmethod
    def parse(cls, text: str) -> RegistryRef:
        raw = text.strip()
        for scheme in ("https://", "http://"):
            raw = raw.removeprefix(scheme)
        host, _, namespace = raw.rstrip("/").partition("/")
        if not host or not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9a-fA-F:]+\](:\d{1,5})?", host):
            raise UsageError(f"bad --registry {text!r}", "use HOST[:PORT][/NAMESPACE], e.g. 127.0.0.1:5000/team")
        if namespace and not _REPO.match(namespace):
            raise UsageError(f"bad registry namespace {namespace!r} in {text!r}",
                             "namespaces are lower-case path parts: letters, digits, . _ -")
        return cls(host.lower(), namespace)

    def repository(self, name: str) -> str:
        return f"{self.namespace}/{name}" if self.namespace else name

    def image(self, name: str, tag: str) -> str:
        return f"{self.host}/{self.repository(name)}:{tag}"

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}" if self.namespace else self.host


def split_ref(ref: str, default_tag: str = "latest") -> tuple[str, str]:
    """``name[:tag]`` -> (name, tag), refusing what a registry would refuse."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        name, tag = ref, default_tag
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        raise UsageError(f"{ref!r} names a registry host ({first}); dockyard names images without one",
                         f"pass the host separately: NAME:VERSION --registry {first}")
    if not _REPO.match(name):
        raise UsageError(f"bad image name {name!r}", "names are lower case: letters, digits, and . _ - /")
    if not _TAG.match(tag):
        raise UsageError(f"bad tag {tag!r}", "tags are up to 128 of letters, digits, . _ - (not starting with . or -)")
    return name, tag


def is_version_tag(tag: str) -> bool:
    """Versions look like numbers (``3``, ``v1.2``, ``2024.06.01``); every other tag is an alias."""
    return bool(_VERSION.match(tag)) and not _LOG_TAG.match(tag)


def _is_loopback(host: str) -> bool:
    # host, host:port, [v6] or [v6]:port
    name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryHTTPError(RegistryError):
    """The registry answered with an HTTP error status (kept so callers can tell 404 from 401)."""

    def __init__(self, problem: str, fix: str = "", *, status: int) -> None:
        super().__init__(problem, fix)
        self.status = status


# -- credentials ------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    identity_token: str = field(default="", repr=False)  # OAuth2 refresh token (ACR, `docker login` with a token)


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def _host_key(key: str) -> str:
    key = re.sub(r"^https?://", "", key.strip()).split("/", 1)[0]
    return key.lower()


def load_credentials(host: str, config: Path | None = None) -> Credentials | None:
    """Credentials docker would use for ``host``: credHelpers, then credsStore, then ``auths``."""
    path = config or docker_config_path()
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read {path}: {exc}", "fix or remove the file, then `dockyard login`") from exc
    helpers = {_host_key(k): v for k, v in (data.get("credHelpers") or {}).items()}
    helper = helpers.get(host) or data.get("credsStore")
    if helper:
        found = _from_helper(str(helper), host)
        if found:
            return found
    for key, entry in (data.get("auths") or {}).items():
        if _host_key(key) != host or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            user = base64.b64decode(entry["auth"]).decode().partition(":")[0] if entry.get("auth") else ""
            return Credentials(user or "<token>", "", identity_token=str(entry["identitytoken"]))
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return Credentials(user, password)
    return None


def _from_helper(helper: str, host: str) -> Credentials | None:
    argv = [f"docker-credential-{helper}", "get"]
    log.debug("$ %s <<< %s", shlex.join(argv), host)
    try:
        proc = subprocess.run(argv, input=host, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as exc:
        raise RegistryError(f"the Docker config names credential helper {helper!r}, but {argv[0]} is not installed",
                            f"install {argv[0]}, or remove it from {docker_config_path()}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryError(f"{argv[0]} did not answer in 30s", "unlock your keychain / check the helper") from exc
    if proc.returncode != 0:  # "credentials not found in native keychain": no login yet
        return None
    answer = json.loads(proc.stdout or "{}")
    if not answer.get("Secret"):
        return None
    if answer.get("Username") == "<token>":  # docker's convention: the secret is an identity token
        return Credentials("<token>", "", identity_token=answer["Secret"])
    return Credentials(answer.get("Username", ""), answer["Secret"])


# -- the HTTP client --------------------------------------------------------------------
@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes = field(repr=False)

    def json(self) -> dict[str, object]:
        return dict(json.loads(self.body))


class _NoRedirectAuth(urllib.request.HTTPRedirectHandler):
    """Registries redirect blob GETs to storage (S3...): never forward our Authorization there."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


class RegistryClient:
    """Tags and manifests of one registry, with Basic or Bearer-token auth from the Docker config."""

    def __init__(self, host: str, *, credentials: Credentials | None = None, scheme: str | None = None,
                 timeout: float = 30.0, retries: int = 4, backoff_s: float = 0.5) -> None:
        self.host = host
        self.retries, self.backoff_s = retries, backoff_s
        # Docker itself talks plain HTTP only to loopback registries unless told otherwise.
        self.scheme = scheme or ("http" if _is_loopback(host) else "https")
        self.timeout = timeout
        self._credentials = credentials
        self._credentials_loaded = credentials is not None
        self._auth: dict[str, str] = {}  # scope -> Authorization header value
        self._opener = urllib.request.build_opener(_NoRedirectAuth())

    @property
    def credentials(self) -> Credentials | None:
        if not self._credentials_loaded:
            self._credentials = load_credentials(self.host)
            self._credentials_loaded = True
        return self._credentials

    # -- API ------------------------------------------------------------------------
    def ping(self) -> None:
        """``GET /v2/``: reachable, speaks Distribution, and our credentials (if needed) work."""
        self._request("GET", "/v2/", scope="")

    def tags(self, repository: str) -> list[str]:
        """Every tag of a repository ([] when it does not exist yet); follows ``Link`` paging."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n=1000"
        while path:
            try:
                _, headers, body = self._request("GET", path, scope=f"repository:{repository}:pull")
            except RegistryError as exc:
                if isinstance(exc, RegistryHTTPError) and exc.status == 404:
                    return []
                raise
            tags += json.loads(body or b"{}").get("tags") or []
            path = _next_link(headers.get("Link"))
        return tags

    def head(self, repository: str, reference: str) -> str | None:
        """The manifest digest for a tag or digest, or None when there is none."""
        try:
            _, headers, _ = self._request("HEAD", f"/v2/{repository}/manifests/{reference}",
                                          scope=f"repository:{repository}:pull", accept=MANIFEST_TYPES)
        except RegistryError as exc:
            if isinstance(exc, RegistryHTTPError) and exc.status == 404:
                return None
            raise
        return headers.get("Docker-Content-Digest")

    def manifest(self, repository: str, reference: str) -> Manifest:
        try:
            _, headers, body = self._request("GET", f"/v2/{repository}/manifests/{reference}",
                                             scope=f"repository:{repository}:pull", accept=MANIFEST_TYPES)
        except RegistryError as exc:
            if isinstance(exc, RegistryHTTPError) and exc.status == 404:
                raise self.unknown(repository, reference) from exc
            raise
        digest = headers.get("Docker-Content-Digest") or _sha256(body)
        media = (headers.get("Content-Type") or "").split(";")[0] or str(json.loads(body).get("mediaType", ""))
        return Manifest(digest, media, body)

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> str:
        """Store ``manifest`` under ``tag`` (the registry already has its blobs); returns its digest."""
        _, headers, _ = self._request("PUT", f"/v2/{repository}/manifests/{tag}", data=manifest.body,
                                      scope=f"repository:{repository}:pull,push",
                                      content_type=manifest.media_type)
        return headers.get("Docker-Content-Digest") or manifest.digest

    def blob(self, repository: str, digest: str) -> bytes:
        _, _, body = self._request("GET", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull")
        return body

    def labels(self, repository: str, reference: str) -> dict[str, str]:
        """The image config's labels (the first platform's for an index)."""
        doc = self.manifest(repository, reference).json()
        if doc.get("manifests"):
            first = doc["manifests"][0]  # type: ignore[index]
            doc = self.manifest(repository, str(first["digest"])).json()
        config = doc.get("config") or {}
        blob = json.loads(self.blob(repository, str(config["digest"])))  # type: ignore[index]
        return dict((blob.get("config") or {}).get("Labels") or {})

    def unknown(self, repository: str, reference: str) -> RegistryError:
        known = [t for t in self.tags(repository) if not _LOG_TAG.match(t)]
        where = f"{self.host}/{repository}"
        if not known:
            return RegistryError(f"{where} has no images (no manifest for {reference!r})",
                                 f"push one first: dockyard push NAME:VERSION --registry {self.host}")
        return RegistryError(f"{where} has no tag {reference!r} (it has: {', '.join(sorted(known)[:20])})",
                             "pick one of those tags, or push that version first")

    # -- transport ------------------------------------------------------------------
    def _request(self, method: str, path: str, *, scope: str, accept: Sequence[str] = (),
                 data: bytes | None = None, content_type: str | None = None) -> tuple[int, Message, bytes]:
        headers = {"Accept": ", ".join(accept)} if accept else {}
        if content_type:
            headers["Content-Type"] = content_type
        if scope in self._auth:
            headers["Authorization"] = self._auth[scope]
        try:
            return self._send(method, path, headers, data)
        except urllib.error.HTTPError as exc:
            # A 401 to a request that carried a Bearer token means the token expired (or was
            # revoked): fetch a fresh one once. Only a 401 to fresh credentials is a refusal.
            stale_token = headers.get("Authorization", "").startswith("Bearer ")
            if exc.code != 401 or ("Authorization" in headers and not stale_token):
                raise self._http_error(method, path, exc) from None
            challenge = exc.headers.get("WWW-Authenticate", "")
        self._auth[scope] = self._authorize(challenge, scope)
        headers["Authorization"] = self._auth[scope]
        try:
            return self._send(method, path, headers, data)
        except urllib.error.HTTPError as exc:
            raise self._http_error(method, path, exc) from None

    def _send(self, method: str, path: str, headers: Mapping[str, str], data: bytes | None
              ) -> tuple[int, Message, bytes]:
        """One request, retried with exponential backoff on 429 and 5xx (honouring Retry-After)."""
        url = f"{self.scheme}://{self.host}{path}"
        for attempt in range(self.retries + 1):
            log.debug("%s %s", method, url)
            req = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
            try:
                with self._opener.open(req, timeout=self.timeout) as resp:
                    return resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as exc:
                if (exc.code != 429 and exc.code < 500) or attempt == self.retries:
                    raise
                delay = _retry_after(exc.headers.get("Retry-After"), self.backoff_s * 2 ** attempt)
                log.info("%s %s answered %s; retrying in %.1fs", method, url, exc.code, delay)
                time.sleep(delay)
            except (urllib.error.URLError, OSError) as exc:
                raise self._unreachable(exc) from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _unreachable(self, exc: Exception) -> RegistryError:
        reason = getattr(exc, "reason", exc)
        text = str(reason)
        if isinstance(reason, ConnectionRefusedError) or "refused" in text:
            fix = ("start one, e.g. `docker-registry serve config.yml` (Debian) or your registry service, "
                   "or fix --registry")
            return RegistryError(f"cannot reach registry {self.host}: connection refused ({self.scheme})", fix)
        if isinstance(reason, socket.gaierror):
            return RegistryError(f"cannot resolve registry host {self.host}: {text}", "check the name in --registry")
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return RegistryError(f"registry {self.host} did not answer in {self.timeout:g}s", "check the network/proxy")
        return RegistryError(f"cannot reach registry {self.scheme}://{self.host}: {text}",
                             "check the address, TLS certificates and proxy settings")

    def _authorize(self, challenge: str, scope: str) -> str:
        kind, params = _parse_challenge(challenge)
        creds = self.credentials
        if kind == "basic":
            if creds is None:
                raise self._auth_error(401, "it needs a login")
            return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        if kind == "bearer" and params.get("realm"):
            query = {"service": params.get("service", "")}
            if scope:
                query["scope"] = scope
            url = params["realm"] + "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
            req = urllib.request.Request(url)
            if creds is not None and creds.identity_token:  # OAuth2: trade the refresh token for an access token
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "client_id": "dockyard", **{k: v for k, v in query.items() if v}}
                req = urllib.request.Request(params["realm"], data=urllib.parse.urlencode(form).encode(),
                                             method="POST")
            elif creds is not None:
                req.add_header("Authorization", "Basic " + base64.b64encode(
                    f"{creds.username}:{creds.password}".encode()).decode())
            try:
                with self._opener.open(req, timeout=self.timeout) as resp:
                    token = json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                raise self._auth_error(exc.code, "the token service refused our credentials") from None
            except (urllib.error.URLError, OSError) as exc:
                raise self._unreachable(exc) from None
            return "Bearer " + str(token.get("token") or token.get("access_token"))
        raise self._auth_error(401, f"unsupported auth challenge {challenge!r}")

    def _auth_error(self, status: int, why: str) -> RegistryError:
        login = f"dockyard login {self.host} -u USER --password-stdin"
        if self.credentials is None:
            return RegistryHTTPError(f"registry {self.host} refused access ({status}): {why}, and there are no "
                                     "credentials for it in the Docker config", f"log in first: {login}", status=status)
        return RegistryHTTPError(f"registry {self.host} refused the credentials for user "
                                 f"{self.credentials.username!r} ({status}): wrong password or no permission",
                                 f"log in again: {login}", status=status)

    def _http_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> RegistryError:
        if exc.code in (401, 403):
            return self._auth_error(exc.code, "access denied")
        detail = ""
        try:
            errors = json.loads(exc.read() or b"{}").get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except (ValueError, AttributeError):
            pass
        return RegistryHTTPError(f"registry {self.host} answered {exc.code} to {method} {path}"
                                 + (f" ({detail})" if detail else ""),
                                 "check the name and tag; for 5xx check the registry's logs", status=exc.code)


def _retry_after(header: str | None, default: float) -> float:
    """Seconds to wait: the registry's Retry-After (seconds), capped at 30, else ``default``."""
    try:
        return min(max(float(header), 0.0), 30.0) if header else default
    except ValueError:
        return default


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return kind.lower(), params


def _next_link(link: str | None) -> str | None:
    m = re.search(r"<([^>]+)>;\s*rel=\"?next\"?", link or "")
    if not m:
        return None
    parts = urllib.parse.urlsplit(m.group(1))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- verbs through the engine -------------------------------------------------------------
@dataclass(frozen=True)
class PushResult:
    local: str
    remote: str
    digest: str


@dataclass(frozen=True)
class PullResult:
    remote: str
    local: str
    digest: str
    image_id: str




def login(engine: Engine, registry: str, username: str, password: str) -> str:
    """``docker login --password-stdin``: the password goes through stdin only, and docker stores it
    with the configured credential helper (plain base64 in config.json only when none is set)."""
    ref = RegistryRef.parse(registry)
    if not username:
        raise UsageError("no user name given", f"dockyard login {ref.host} -u USER --password-stdin")
    if not password:
        raise UsageError("no password on stdin", f"echo \"$TOKEN\" | dockyard login {ref.host} -u {username} --password-stdin")
    # Check the password ourselves first, so a typo gets our message rather than docker's.
    RegistryClient(ref.host, credentials=Credentials(username, password)).ping()
    proc = engine.docker("login", ref.host, "--username", username, "--password-stdin",
                         input=password, check=False, timeout=120)
    if proc.returncode != 0:
        raise _push_pull_error("login", ref.host, proc.stderr or proc.stdout)
    return (proc.stdout or "").strip().splitlines()[-1] if proc.stdout.strip() else "Login Succeeded"


def push(engine: Engine, ref: str, registry: str, *, on_line: Printer | None = None) -> PushResult:
    """Tag ``name:version`` as ``<registry>/<name>:<version>`` and push it; never deletes anything local."""
    name, tag = split_ref(ref)
    reg = RegistryRef.parse(registry)
    if not engine.image_exists(f"{name}:{tag}"):
        raise UsageError(f"no local image {name}:{tag}", f"build it first (dockyard build -t {name}:{tag}) or check `docker images {name}`")
    RegistryClient(reg.host).ping()  # clear errors for refused/unauthorised before docker's own
    remote = reg.image(name, tag)
    had_remote_tag = engine.image_exists(remote)
    engine.tag(f"{name}:{tag}", remote)
    lines = _follow(engine, ["push", remote], on_line)
    code = lines.pop() if lines and isinstance(lines[-1], int) else 1
    text = "\n".join(str(x) for x in lines)
    if code != 0:
        if not had_remote_tag:  # drop only the name we just added; the image keeps name:version
            engine.docker("image", "rm", remote, check=False)
        raise _push_pull_error("push", reg.host, text)
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", text)
    digest = m.group(1) if m else (RegistryClient(reg.host).head(reg.repository(name), tag) or "")
    return PushResult(f"{name}:{tag}", remote, digest)


def pull(engine: Engine, ref: str, registry: str, *, on_line: Printer | None = None,
         replace: bool = False) -> PullResult:
    """Pull ``<registry>/<name>:<version>`` and tag it locally as ``name:version`` too, unless that
    local tag is another image a local project folder owns (then only with ``replace``)."""
    name, tag = split_ref(ref)
    reg = RegistryRef.parse(registry)
    client = RegistryClient(reg.host)
    repo = reg.repository(name)
    if client.head(repo, tag) is None:
        raise client.unknown(repo, tag)
    remote = reg.image(name, tag)
    lines = _follow(engine, ["pull", remote], on_line)
    code = lines.pop() if lines and isinstance(lines[-1], int) else 1
    text = "\n".join(str(x) for x in lines)
    if code != 0:
        raise _push_pull_error("pull", reg.host, text)
    m = re.search(r"Digest: (sha256:[0-9a-f]{64})", text)
    digest = m.group(1) if m else (client.head(repo, tag) or "")
    from .names import claim_pulled

    claim_pulled(engine, f"{name}:{tag}", remote, replace=replace)
    engine.tag(remote, f"{name}:{tag}")
    return PullResult(remote, f"{name}:{tag}", digest, engine.image_id(remote))


def _follow(engine: Engine, args: list[str], on_line: Printer | None) -> list[str | int]:
    return list(engine._follow(args, on_line))  # the engine's own streaming door (logs argv)


def _push_pull_error(verb: str, host: str, text: str) -> RegistryError:
    last = next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), "no output")
    login_fix = f"log in: dockyard login {host} -u USER --password-stdin"
    if re.search(r"unauthorized|authentication required|no basic auth credentials|denied|401|403", text, re.IGNORECASE):
        return RegistryError(f"{verb} to {host} was refused: {last}", login_fix)
    if re.search(r"connection refused|no such host|i/o timeout|dial tcp", text, re.IGNORECASE):
        return RegistryError(f"{verb}: cannot reach registry {host}: {last}",
                             "start the registry or fix --registry; nothing local was changed")
    if re.search(r"manifest unknown|not found", text, re.IGNORECASE):
        return RegistryError(f"{verb}: {host} has no such image: {last}", "check the name and tag")
    if re.search(r"server gave HTTP response to HTTPS client|x509|certificate", text, re.IGNORECASE):
        return RegistryError(f"{verb}: TLS problem with {host}: {last}",
                             f"add {host} to insecure-registries in /etc/docker/daemon.json, or give it a certificate")
    return RegistryError(f"docker {verb} failed for {host}: {last}", "re-run with --debug to see the docker command")


# -- aliases ----------------------------------------------------------------------------
@dataclass(frozen=True)
class AliasMove:
    repository: str
    alias: str
    version: str
    digest: str
    previous_digest: str | None


def _alias_log(client: RegistryClient, repo: str, alias: str, tags: Sequence[str]) -> list[tuple[int, str, str]]:
    """(seq, op, tag) of an alias' log tags, oldest first."""
    entries = []
    for t in tags:
        m = _LOG_TAG.match(t)
        if m and m.group("alias") == alias:
            entries.append((int(m.group("seq")), m.group("op"), t))
    return sorted(entries)


def _check_alias(alias: str) -> None:
    if not _TAG.match(alias) or is_version_tag(alias) or len(alias) > 100:
        raise UsageError(f"bad alias {alias!r}",
                         "an alias is a tag name that does not look like a version: e.g. production, staging")


def _alias_target(name: str, alias: str, registry: str) -> tuple[RegistryRef, RegistryClient, str, list[str]]:
    """Validate the alias and look up the repository and its tags (promote and rollback)."""
    _check_alias(alias)
    reg = RegistryRef.parse(registry)
    client = RegistryClient(reg.host)
    repo = reg.repository(name)
    return reg, client, repo, client.tags(repo)


def promote(ref: str, alias: str, registry: str) -> AliasMove:
    """Point ``alias`` at version ``name:N`` registry-side (manifest PUT; no layers move)."""
    name, version = split_ref(ref, default_tag="")
    reg, client, repo, tags = _alias_target(name, alias, registry)
    if version not in tags:
        raise client.unknown(repo, version)
    manifest = client.manifest(repo, version)
    entries = _alias_log(client, repo, alias, tags)
    previous = client.head(repo, alias) if alias in tags else None
    seq = entries[-1][0] if entries else 0
    if previous and not entries:  # an alias someone set by hand: adopt it as the first entry
        seq += 1
        client.put_manifest(repo, f"{alias}.promote.{seq}", client.manifest(repo, alias))
    _move_alias(client, repo, alias, manifest)
    client.put_manifest(repo, f"{alias}.promote.{seq + 1}", manifest)
    return AliasMove(repo, alias, version, manifest.digest, previous)


_IMMUTABLE = re.compile(r"immutab|already exists|TAG_INVALID|tag.*(exists|locked)", re.IGNORECASE)


def _move_alias(client: RegistryClient, repo: str, alias: str, manifest: Manifest) -> None:
    """Re-point the alias tag. Registries with immutable tags (ECR, Harbor, ACR locks...) refuse to
    move an existing tag: say so instead of a bare HTTP error. The history tags are always new."""
    try:
        client.put_manifest(repo, alias, manifest)
    except RegistryHTTPError as exc:
        if exc.status in (400, 403, 405, 409, 412) and (_IMMUTABLE.search(exc.problem) or exc.status in (409, 412)):
            raise RegistryError(
                f"{client.host}/{repo} does not let tag {alias!r} move: the registry keeps tags immutable "
                f"({exc.problem})",
                "allow mutable tags for alias names (e.g. a tag-immutability exclusion for "
                f"{alias!r}), or deploy the version tag itself") from exc
        raise


def alias_stack(client: RegistryClient, repo: str, alias: str, tags: Sequence[str] | None = None) -> list[str]:
    """Replay the log: promotions push a digest, rollbacks pop one. Returns digests, oldest first."""
    stack: list[str] = []
    for _, op, tag in _alias_log(client, repo, alias, tags if tags is not None else client.tags(repo)):
        if op == "promote":
            stack.append(client.head(repo, tag) or "")
        elif stack:
            stack.pop()
    return stack


def rollback(name: str, alias: str, registry: str) -> AliasMove:
    """Point ``alias`` back at the version it had before the last promotion."""
    reg, client, repo, tags = _alias_target(name, alias, registry)
    if alias not in tags:
        raise RegistryError(f"{reg.host}/{repo} has no alias {alias!r}",
                            f"promote a version first: dockyard promote {name}:N --as {alias} --registry {registry}")
    entries = _alias_log(client, repo, alias, tags)
    stack = alias_stack(client, repo, alias, tags)
    if len(stack) < 2:
        raise RegistryError(f"{alias!r} of {reg.host}/{repo} has no earlier version to roll back to",
                            f"promote the version you want: dockyard promote {name}:N --as {alias} --registry {registry}")
    current, target = stack[-1], stack[-2]
    manifest = client.manifest(repo, target)
    _move_alias(client, repo, alias, manifest)
    client.put_manifest(repo, f"{alias}.rollback.{entries[-1][0] + 1}", manifest)
    versions = [t for t in tags if is_version_tag(t) and client.head(repo, t) == target]
    return AliasMove(repo, alias, versions[0] if versions else target, target, current)


# -- listing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionInfo:
    where: str  # "local" or the registry
    name: str
    version: str
    digest: str  # manifest digest (remote) or image id (local)
    aliases: tuple[str, ...]
    metrics: Mapping[str, str]
    created: str = ""


def metrics_of(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {k[len(METRIC_PREFIX):]: v for k, v in (labels or {}).items() if k.startswith(METRIC_PREFIX)}


def remote_versions(name: str, registry: str) -> list[VersionInfo]:
    reg = RegistryRef.parse(registry)
    client = RegistryClient(reg.host)
    repo = reg.repository(name)
    tags = [t for t in client.tags(repo) if not _LOG_TAG.match(t)]
    digests = {t: client.head(repo, t) or "" for t in tags}
    out = []
    for tag in sorted((t for t in tags if is_version_tag(t)), key=_version_key):
        aliases = tuple(sorted(a for a in tags if not is_version_tag(a) and digests[a] == digests[tag]))
        labels = client.labels(repo, digests[tag])
        out.append(VersionInfo(str(reg), name, tag, digests[tag], aliases, metrics_of(labels),
                               labels.get("org.opencontainers.image.created", "")))
    return out


def local_versions(engine: Engine, name: str | None = None) -> list[VersionInfo]:
    """Local images of ``name`` (or every image dockyard built), grouped by image id."""
    rows = engine.images(filters=[f"reference={name}"] if name else [f"label={contract.LABEL_NAME}"])
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if row.get("Tag") and row["Tag"] != "<none>":
            by_id.setdefault(row["ID"], []).append(row)
    out = []
    for image_id, group in by_id.items():
        info = engine.inspect(image_id)
        config: dict[str, Any] = info.get("Config") or {}  # type: ignore[assignment]
        labels = config.get("Labels") or {}
        for row in group:
            if not is_version_tag(row["Tag"]):
                continue
            aliases = tuple(sorted(r["Tag"] for r in group if not is_version_tag(r["Tag"])))
            out.append(VersionInfo("local", row["Repository"], row["Tag"], image_id, aliases,
                                   metrics_of(labels), str(info.get("Created", ""))))
        if not any(is_version_tag(r["Tag"]) for r in group):  # alias-only images still show up
            out.append(VersionInfo("local", group[0]["Repository"], "-", image_id,
                                   tuple(sorted(r["Tag"] for r in group)), metrics_of(labels),
                                   str(info.get("Created", ""))))
    return sorted(out, key=lambda v: (v.name, _version_key(v.version)))


def _version_key(tag: str) -> tuple[object, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[._+-]", tag.lstrip("v")))


# -- prune ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PruneResult:
    removed: tuple[str, ...]
    kept: tuple[tuple[str, str], ...]  # (tag, why)


def prune(engine: Engine, name: str, keep: int, *, dry_run: bool = False) -> PruneResult:
    """Remove all but the highest ``keep`` local versions of ``name``; never an aliased one or one a
    running container uses. Only tags are removed; docker deletes layers nothing else uses."""
    if keep < 0:
        raise UsageError(f"--keep {keep} is negative", "pass --keep 0 or more")
    versions = [v for v in local_versions(engine, name) if v.version != "-"]
    # Highest version first: version numbers say what is newest even when two images were built
    # in the same second or one was pulled later (Created is the build time, not the arrival).
    versions.sort(key=lambda v: (_version_key(v.version), v.created), reverse=True)
    in_use = _running_image_ids(engine)
    removed, kept = [], []
    for i, v in enumerate(versions):
        ref = f"{v.name}:{v.version}"
        why = ("among the newest" if i < keep else f"aliased as {', '.join(v.aliases)}" if v.aliases
               else "used by a running container" if v.digest in in_use else "")
        if why:
            kept.append((ref, why))
            continue
        if not dry_run:
            proc = engine.docker("image", "rm", ref, check=False)
            if proc.returncode != 0:
                kept.append((ref, f"docker refused: {(proc.stderr or '').strip().splitlines()[-1:]}"))
                continue
        removed.append(ref)
    return PruneResult(tuple(removed), tuple(kept))


def _running_image_ids(engine: Engine) -> set[str]:
    ids = [c["ID"] for c in engine.containers(all_=False)]
    if not ids:
        return set()
    proc = engine.docker("container", "inspect", "--format", "{{.Image}}", *ids, check=False)
    return {line.strip() for line in (proc.stdout or "").splitlines() if line.strip()}


__all__ = [
    "AliasMove", "Credentials", "Manifest", "PruneResult", "PullResult", "PushResult", "RegistryClient",
    "RegistryRef", "VersionInfo", "is_version_tag", "load_credentials", "local_versions", "login", "promote",
    "prune", "pull", "push", "remote_versions", "rollback", "split_ref",
]


def alias_version(name: str, alias: str, registry: str) -> int:
    """The version number alias ``name@alias`` points at: the version tag with the alias's digest."""
    _check_alias(alias)
    reg = RegistryRef.parse(registry)
    client = RegistryClient(reg.host)
    repo = reg.repository(name)
    tags = client.tags(repo)
    target = client.head(repo, alias) if alias in tags else None
    if target is None:
        raise RegistryError(f"{reg.host}/{repo} has no alias {alias!r}",
                            f"promote a version first: dockyard promote {name}:N --as {alias} --registry {registry}")
    for tag in sorted((t for t in tags if t.isdigit()), key=int, reverse=True):
        if client.head(repo, tag) == target:
            return int(tag)
    raise RegistryError(f"alias {name}@{alias} points at {target[:19]}, which no version tag N of {repo} has",
                        f"re-promote a version: dockyard promote {name}:N --as {alias} --registry {registry}")
