"""Image audit from a ``docker save`` archive: layers applied in order, whiteouts honoured.

Nothing is extracted to disk and nothing from the image runs: each layer tar is streamed, small
heads of files are sniffed for secrets, and only the few files the SBOM needs are kept in memory.
Both archive layouts are read: legacy docker-save (``manifest.json`` + ``<id>/layer.tar``) and
OCI (``index.json`` + ``blobs/sha256/...``).
"""

from __future__ import annotations

import json
import logging
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

from dockyard.errors import EngineError, ScanError
from dockyard.runtime import contract
from dockyard.scan.findings import Finding, Report
from dockyard.scan.secrets import SecretFile, classify_file, judge_assignment

log = logging.getLogger(__name__)
NON_SERVING_ROLES = ("train",)  # io.dockyard.role values of images that run a job, not a server

HEAD_BYTES = 4096  # enough for PEM headers, rc files and the start of a GCP key
MAX_SNIFF_SIZE = 1 << 20  # bigger files are data, not credentials
MAX_KEEP_SIZE = 16 << 20
MAX_MODEL_SIZE = 2 << 30  # baked pickle-family models are read whole to be judged; bigger ones are not checked
_OCI_INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"}


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute: "/etc/passwd"
    kind: str  # file | dir | symlink | hardlink | other
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str
    layer: int
    secret: SecretFile | None = None
    content: bytes | None = None  # only for files the caller asked to keep


@dataclass(frozen=True)
class ImageFilesystem:
    """The final filesystem view of an image plus its config."""

    config: Mapping[str, Any]  # the image config JSON ("config", "history", "rootfs"...)
    files: Mapping[str, FileEntry]
    tags: tuple[str, ...]
    layer_count: int

    @property
    def container_config(self) -> Mapping[str, Any]:
        return self.config.get("config") or {}

    def read(self, path: str) -> bytes | None:
        entry = self.files.get(path)
        return entry.content if entry else None


def baked_model(path: str) -> bool:
    """A pickle-family file where dockyard images keep weights and code (the image contract)."""
    return path.startswith((contract.MODEL_DIR + "/", contract.APP_DIR + "/")) and \
        path[path.rfind("."):].lower() in contract.PICKLE_SUFFIXES


def default_keep(path: str) -> bool:
    """Files whose full content the SBOM, the user lookup and the model scan need."""
    return baked_model(path) or (
        path.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO"))
        or path == "/var/lib/dpkg/status"
        or path.startswith("/var/lib/dpkg/status.d/")
        or path in {"/etc/os-release", "/usr/lib/os-release", "/etc/passwd"}
    )


# -- reading the archive ----------------------------------------------------------------------


def read_image_tar(archive: Path, *, ref: str | None = None,
                   keep: Callable[[str], bool] = default_keep) -> ImageFilesystem:
    """Read a ``docker save`` / OCI archive into its final filesystem view (pure: reads only)."""
    try:
        outer = tarfile.open(archive, mode="r:*")  # noqa: SIM115 (closed by the `with` below)
    except (OSError, tarfile.TarError) as exc:
        raise ScanError(f"{archive} is not a readable image archive: {exc}",
                        "create it with `docker save -o image.tar IMAGE`") from exc
    with outer:
        names = set(outer.getnames())
        if "manifest.json" in names:
            config, layers, tags = _legacy_layout(outer, ref)
        elif "index.json" in names:
            config, layers, tags = _oci_layout(outer)
        else:
            raise ScanError(f"{archive} has neither manifest.json nor index.json",
                            "pass an archive written by `docker save` or an OCI image layout tar")
        view: dict[str, FileEntry] = {}
        for index, layer_name in enumerate(layers):
            member = _member(outer, layer_name)
            with _open_layer(outer, member, layer_name) as layer:
                _apply_layer(view, layer, index, keep)
    return ImageFilesystem(MappingProxyType(config), MappingProxyType(view), tags, len(layers))


def _member(outer: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    try:
        member = outer.getmember(name)
    except KeyError:
        raise ScanError(f"image archive lacks {name}", "re-create it with `docker save`") from None
    # Docker 25+ writes layer paths in manifest.json as symlinks into blobs/.
    while member.issym() or member.islnk():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname)) \
            if member.issym() else member.linkname
        member = outer.getmember(target)
    return member


def _load_json(outer: tarfile.TarFile, name: str) -> Any:
    fh = outer.extractfile(_member(outer, name))
    if fh is None:
        raise ScanError(f"image archive entry {name} is not a file", "re-create it with `docker save`")
    try:
        return json.load(fh)
    except ValueError as exc:
        raise ScanError(f"image archive entry {name} is not JSON: {exc}", "re-create it with `docker save`") from exc


def _legacy_layout(outer: tarfile.TarFile, ref: str | None) -> tuple[dict[str, Any], list[str], tuple[str, ...]]:
    manifest = _load_json(outer, "manifest.json")
    if not manifest:
        raise ScanError("manifest.json lists no image", "re-create the archive with `docker save IMAGE`")
    chosen = manifest[0]
    if ref:
        for item in manifest:
            if ref in (item.get("RepoTags") or []):
                chosen = item
    return _load_json(outer, chosen["Config"]), list(chosen["Layers"]), tuple(chosen.get("RepoTags") or ())


def _blob(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    return f"blobs/{algo}/{hexdigest}"


def _oci_layout(outer: tarfile.TarFile) -> tuple[dict[str, Any], list[str], tuple[str, ...]]:
    doc = _load_json(outer, "index.json")
    tags: list[str] = []
    # Walk nested indexes down to one image manifest (prefer linux/amd64).
    while doc.get("manifests"):
        manifests = doc["manifests"]
        pick = next((m for m in manifests if (m.get("platform") or {}).get("architecture") == "amd64"), manifests[0])
        tag = (pick.get("annotations") or {}).get("io.containerd.image.name") or \
            (pick.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        if tag:
            tags.append(tag)
        doc = _load_json(outer, _blob(pick["digest"]))
        if doc.get("mediaType") not in _OCI_INDEX_TYPES and "layers" in doc:
            break
    if "layers" not in doc:
        raise ScanError("OCI index points at no image manifest", "re-create the archive")
    config = _load_json(outer, _blob(doc["config"]["digest"]))
    return config, [_blob(layer["digest"]) for layer in doc["layers"]], tuple(tags)


class _open_layer:
    """Context manager: the layer as a TarFile, whatever its compression (tar / gzip / bz2 / xz)."""

    def __init__(self, outer: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> None:
        self.outer, self.member, self.name = outer, member, name
        self.fh: IO[bytes] | None = None
        self.tar: tarfile.TarFile | None = None

    def __enter__(self) -> tarfile.TarFile:
        self.fh = self.outer.extractfile(self.member)
        if self.fh is None:
            raise ScanError(f"layer {self.name} is not a file", "re-create the archive with `docker save`")
        magic = self.fh.read(4)
        self.fh.seek(0)
        if magic == b"\x28\xb5\x2f\xfd":
            raise ScanError(f"layer {self.name} is zstd-compressed, which Python 3.11 cannot read",
                            "export the image with `docker save` (uncompressed layers)")
        try:
            self.tar = tarfile.open(fileobj=self.fh, mode="r:*")
        except tarfile.TarError as exc:
            raise ScanError(f"layer {self.name} is not a tar: {exc}", "re-create the archive") from exc
        return self.tar

    def __exit__(self, *exc: object) -> None:
        if self.tar:
            self.tar.close()
        if self.fh:
            self.fh.close()


def _norm(name: str) -> str:
    return "/" + posixpath.normpath("/" + name).lstrip("/") if name not in ("", ".", "./") else "/"


def _kind(m: tarfile.TarInfo) -> str:
    if m.isreg():
        return "file"
    if m.isdir():
        return "dir"
    if m.issym():
        return "symlink"
    if m.islnk():
        return "hardlink"
    return "other"


def _apply_layer(view: dict[str, FileEntry], layer: tarfile.TarFile, index: int,
                 keep: Callable[[str], bool]) -> None:
    # Whiteouts in a layer delete from the layers *below* it, never from itself, so collect
    # this layer's entries first and apply deletions before adding them.
    opaque: set[str] = set()
    removed: set[str] = set()
    added: dict[str, FileEntry] = {}
    for m in layer:
        path = _norm(m.name)
        parent, base = posixpath.split(path)
        if base == ".wh..wh..opq":
            opaque.add(parent)
            continue
        if base.startswith(".wh."):
            removed.add(posixpath.join(parent, base[4:]))
            continue
        added[path] = _entry(layer, m, path, index, keep)
    # A non-directory replaces a whole lower directory tree.
    replaced = {p for p, e in added.items() if e.kind != "dir"}
    if opaque or removed or replaced:
        trees = removed | replaced
        for path in list(view):
            if path in removed or _under_any(path, trees, opaque):
                del view[path]
    view.update(added)


def _under_any(path: str, trees: set[str], opaque: set[str]) -> bool:
    parent = posixpath.dirname(path)
    while True:
        if parent in trees or parent in opaque:
            return True
        if parent == "/":
            return False
        parent = posixpath.dirname(parent)


def _entry(layer: tarfile.TarFile, m: tarfile.TarInfo, path: str, index: int,
           keep: Callable[[str], bool]) -> FileEntry:
    secret: SecretFile | None = None
    content: bytes | None = None
    if m.isreg():
        wants_content = keep(path) and m.size <= (MAX_MODEL_SIZE if baked_model(path) else MAX_KEEP_SIZE)
        head = b""
        if wants_content or m.size <= MAX_SNIFF_SIZE:
            fh = layer.extractfile(m)
            if fh is not None:
                data = fh.read() if wants_content else fh.read(HEAD_BYTES)
                content = data if wants_content else None
                head = data[:HEAD_BYTES]
        secret = classify_file(path, head)
    elif m.islnk() or m.issym():
        secret = classify_file(path, None)
    linkname = _norm(m.linkname) if m.islnk() else m.linkname
    return FileEntry(path, _kind(m), m.mode, m.uid, m.gid, m.size, linkname, index, secret, content)


def save_image(ref: str, dest_dir: Path) -> Path:
    """``docker save`` ``ref`` into ``dest_dir`` through the engine adapter (never pulls)."""
    from ..engine import Engine
    from ..errors import RunError

    try:
        return Engine.connect().save_image(ref, dest_dir / "image.tar")
    except RunError as exc:
        raise EngineError(f"docker save {ref} failed: {exc.problem}",
                          "check the image name with `docker image ls` (dockyard never pulls for a scan)") from exc


# -- audit ---------------------------------------------------------------------------------------


def effective_user(fs: ImageFilesystem) -> tuple[str, int | None]:
    """The configured user and its uid (None when a name is not in /etc/passwd)."""
    user = str(fs.container_config.get("User") or "").split(":")[0].strip()
    if user in {"", "root"}:
        return user or "(unset)", 0
    if user.isdigit():
        return user, int(user)
    for line in (fs.read("/etc/passwd") or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == user and fields[2].isdigit():
            return user, int(fields[2])
    return user, None


def audit_config(fs: ImageFilesystem, location: str = "image config") -> list[Finding]:
    cfg = fs.container_config
    findings: list[Finding] = []
    user, uid = effective_user(fs)
    if uid == 0:
        findings.append(Finding("image/root-user", "high", f"image runs as root (User={user})", location,
                                "a process escaping the app owns the container",
                                f"add `USER {contract.USER_UID}:{contract.USER_GID}` to the final stage of the Dockerfile"))
    test = (cfg.get("Healthcheck") or {}).get("Test") or []
    role = str((cfg.get("Labels") or {}).get(contract.LABEL_ROLE, ""))
    # A job image (dockyard train) serves nothing to probe; its explicit HEALTHCHECK NONE is deliberate.
    deliberate = test[:1] == ["NONE"] and role in NON_SERVING_ROLES
    if (not test or test[0] == "NONE") and not deliberate:
        findings.append(Finding("image/no-healthcheck", "medium", "image has no HEALTHCHECK", location,
                                "orchestrators cannot tell a hung server from a healthy one",
                                "add a HEALTHCHECK instruction (dockyard serve images probe /health)"))
    for item in cfg.get("Env") or []:
        name, _, value = str(item).partition("=")
        verdict = judge_assignment(name, value)
        if verdict:
            findings.append(Finding("image/secret-env", verdict.severity, f"secret in env {name}", location,
                                    verdict.reason, "remove it and pass it at run time (--secret)"))
    for name, value in sorted((cfg.get("Labels") or {}).items()):
        verdict = judge_assignment(name, str(value))
        if verdict:
            findings.append(Finding("image/secret-label", verdict.severity, f"secret in label {name}", location,
                                    verdict.reason, "remove the label; labels are public metadata"))
    return findings


def audit_files(files: Iterable[FileEntry]) -> list[Finding]:
    findings: list[Finding] = []
    for entry in sorted(files, key=lambda e: e.path):
        if entry.kind in {"file", "hardlink"} and entry.mode & 0o6000:
            bits = "+".join(b for b, mask in (("setuid", 0o4000), ("setgid", 0o2000)) if entry.mode & mask)
            findings.append(Finding("image/setuid", "medium", f"{bits} file {entry.path}", entry.path,
                                    f"mode {entry.mode:04o}, owner {entry.uid}:{entry.gid}",
                                    f"RUN chmod u-s,g-s {entry.path} (or remove it)"))
        if entry.secret:
            findings.append(Finding("image/secret-file", entry.secret.severity,
                                    f"secret-looking file {entry.path}", entry.path, entry.secret.reason,
                                    "remove it from the build context (.dockerignore) and use --secret"))
    return findings


def audit_image(fs: ImageFilesystem, target: str) -> Report:
    return Report(target, tuple(audit_config(fs) + audit_files(fs.files.values())),
                  checks=(f"image config and {len(fs.files)} files (secrets, setuid)",))
