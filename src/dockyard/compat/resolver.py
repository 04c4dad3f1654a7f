"""Resolve framework, Python, CUDA and base images from the compatibility data (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..errors import CompatError
from .bases import releases_text, suite_for


@dataclass(frozen=True)
class Choice:
    """One resolved decision and the reason for it (shown by `dockyard plan`)."""

    what: str
    value: str
    why: str


@dataclass(frozen=True)
class Resolution:
    python: str
    framework: str | None
    framework_series: str | None  # key in the data, e.g. "2.21"
    framework_release: str | None  # what the installer will pick, e.g. "2.21.0" (see _series)
    target: str  # "cpu" | "gpu"
    cuda: str | None
    base_final: str
    base_builder: str
    extra_index_urls: tuple[str, ...]
    package_renames: tuple[tuple[str, str], ...]  # (from, to): e.g. xgboost -> xgboost-cpu
    system_packages: tuple[str, ...]
    warm_imports: tuple[str, ...]
    uv_version: str
    choices: tuple[Choice, ...]
    warnings: tuple[str, ...] = ()  # shown by `plan`: e.g. a release older than the data (unchecked)


@lru_cache(maxsize=1)
def compat_data() -> dict[str, Any]:
    return dict(json.loads(resources.files("dockyard.compat").joinpath("frameworks.json").read_text()))


def _pyver(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


def nearest_python(asked: str, candidates: list[str] | tuple[str, ...]) -> str:
    """The candidate Python (``3.N``) nearest to ``asked``; a tie goes to the newer. The one rule
    for every "nearest supported Python" dockyard names or picks."""
    want = _pyver(asked)[1]
    return min(candidates, key=lambda c: (abs(_pyver(c)[1] - want), -_pyver(c)[1]))


def framework_specifier(text: str | None) -> SpecifierSet:
    """``framework_version`` -> a PEP 440 specifier. A requirement's specifier (``>0.19.1``,
    ``>=1.0,<2``, ``~=1.2``, ``==1.4.2``) stays as it is; a bare version from dockyard.yaml is a
    pin: ``1.4.2`` -> ``==1.4.2``, ``1.4`` -> ``==1.4.*``."""
    text = (text or "").strip()
    if not text:
        return SpecifierSet()
    try:
        version = Version(text)
    except InvalidVersion:
        pass
    else:
        return SpecifierSet(f"=={version.public}" if len(version.release) >= 3 else f"=={text}.*")
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise CompatError(
            f"framework version {text!r} is not a version (nor a version range)",
            "write it like 2.3.1, 2.3 or >=2.3,<3",
        ) from exc


def _candidates(key: str, latest: str) -> list[Version]:
    """Releases of one series that may exist, newest first: the known latest and every patch
    below it (``1.5`` with latest ``1.5.2`` -> 1.5.2, 1.5.1, 1.5.0)."""
    top = Version(latest)
    series = Version(key).release
    if len(series) == 1:  # a major-only series (keras "3"): minors and patches below latest
        return [Version(f"{top.major}.{m}.{p}") for m in range(top.minor, -1, -1)
                for p in range(top.micro if m == top.minor else 20, -1, -1)]
    return [Version(".".join(map(str, (*series, p)))) for p in range(top.micro, -1, -1)]


def _version_or_none(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class _Pick:
    series: str | None  # None: a release older than the data's versions (see _older)
    release: str  # what uv will install, as far as the data knows
    why: str
    warning: str | None = None


def _series(framework: str, version: str | None, data: dict[str, Any], python: str | None = None) -> _Pick:
    """The release the installer will pick for this specifier, and its series in the data.

    Like the resolver, the newest known release the specifier admits wins, among series that
    support ``python`` when any admitted one does (uv skips releases whose Requires-Python
    excludes the interpreter)."""
    versions: dict[str, Any] = data["frameworks"][framework]["versions"]
    keys = sorted(versions, key=Version, reverse=True)
    spec = framework_specifier(version)
    shown = f"{framework}{spec}" if str(spec) else framework
    named = [v for v in (_version_or_none(x.version.removesuffix(".*")) for x in spec) if v is not None]
    admitted: list[tuple[str, Version]] = []
    for key in keys:
        prefix = Version(key).release
        # A release the project names itself counts even when newer than the data's latest patch.
        mine = [v for v in named if v.release[: len(prefix)] == prefix]
        candidates = sorted({*_candidates(key, versions[key]["latest"]), *mine}, reverse=True)
        found = next((c for c in candidates if spec.contains(c)), None)
        if found is not None:
            admitted.append((key, found))
    if python is not None:
        fitting = [(k, v) for k, v in admitted if _pyver(versions[k]["python"][0]) <= _pyver(python)
                   <= _pyver(versions[k]["python"][1])]
        admitted = fitting or admitted
    newest_known = Version(versions[keys[0]]["latest"])
    later = [Version(f"{newest_known.major}.{newest_known.minor + 1}.0"), Version(f"{newest_known.major + 1}.0.0")]
    beyond = any(spec.contains(v) for v in [*later, *(v for v in named if v > newest_known)])
    if admitted:
        key, release = admitted[0]
        if not str(spec):
            why = f"no {framework} version pinned: the installer takes the newest release ({release} when this data was written)"
        elif spec.contains(release) and "==" in str(spec) and len(spec) == 1 and "*" not in str(spec):
            why = f"{shown} from the project's requirements"
        else:
            why = f"{shown} from the project's requirements admits {release}, the newest release dockyard knows it allows"
        if beyond and str(spec):
            why += " (a newer one may be installed if released since)"
        return _Pick(key, str(release), why)
    if beyond:
        key = keys[0]
        return _Pick(key, f"{spec} (newer than {newest_known})",
                     f"{shown} admits only releases newer than the data ({newest_known}): using {key}'s constraints")
    return _older(framework, spec, shown, named, data, python)


def _older(framework: str, spec: SpecifierSet, shown: str, named: list[Version], data: dict[str, Any],
           python: str | None) -> _Pick:
    """A specifier that admits only releases older than the data's versions: what the project
    pinned is installed as it is, with a warning (dockyard cannot vouch for it), unless the
    data's ``older`` table knows that release published no wheel for ``python``."""
    fw = data["frameworks"][framework]
    keys = sorted(fw["versions"], key=Version)
    known = f"{keys[0]} ({Version(fw['versions'][keys[0]]['latest']).base_version})..{fw['versions'][keys[-1]]['latest']}"
    older: dict[str, Any] = fw.get("older", {})
    exact = [v for v in named if spec.contains(v, prereleases=True)]
    hit = _newest_older(spec, named, older)
    release = str(hit[1]) if hit else (str(exact[0]) if len(exact) == 1 else str(spec))
    wheels = _wheels(hit, exact, older)
    if wheels and python is not None and not _between(python, wheels[0], wheels[1]):
        raise _no_wheel(framework, shown, release, python, wheels, fw, data["python"]["supported"])
    where = wheels[2] if wheels and wheels[0] else "dockyard has no data on it"
    why = f"{shown} from the project's requirements: older than dockyard's compatibility data ({known}); installed as pinned"
    warning = (f"{shown} is older than dockyard's compatibility data ({known}): dockyard installs what the project "
               f"pinned and cannot vouch that it works{f' on Python {python}' if python else ''} ({where}); "
               f"to have it checked, allow {framework}>={keys[0]}")
    return _Pick(None, release, why, warning)


def _newest_older(spec: SpecifierSet, named: list[Version], older: dict[str, Any]) -> tuple[str, Version] | None:
    """(series, release) of the newest release in the ``older`` table the specifier admits."""
    for key in sorted(older, key=Version, reverse=True):
        prefix = Version(key).release
        mine = [v for v in named if v.release[: len(prefix)] == prefix]
        candidates = sorted({*_candidates(key, older[key]["latest"]), *mine}, reverse=True)
        found = next((c for c in candidates if spec.contains(c, prereleases=True)), None)
        if found is not None:
            return key, found
    return None


def _wheels(hit: tuple[str, Version] | None, exact: list[Version], older: dict[str, Any]
            ) -> tuple[str | None, str, str] | None:
    """(lowest Python or None when unknown, highest Python, the series that says so) for wheels of
    the release: its series in the table, or, for a pin older than every series there, at most
    what the oldest series had (releases never gain wheels for later Pythons)."""
    if hit is not None:
        lo, hi = older[hit[0]]["python"]
        return lo, hi, f"the {hit[0]} series published wheels for Python {lo} to {hi}"
    if older and len(exact) == 1:
        oldest = min(older, key=Version)
        if exact[0] < Version(oldest):
            hi = older[oldest]["python"][1]
            return None, hi, f"it is older than the {oldest} series, which has them up to Python {hi}"
    return None


def _between(python: str, lo: str | None, hi: str) -> bool:
    return (lo is None or _pyver(lo) <= _pyver(python)) and _pyver(python) <= _pyver(hi)


def _no_wheel(framework: str, shown: str, release: str, python: str, wheels: tuple[str | None, str, str],
              fw: dict[str, Any], supported: list[str]) -> CompatError:
    lo, hi, says = wheels
    fits = [p for p in supported if _between(p, lo, hi)]
    options = [f'set python: "{max(fits, key=_pyver)}" in dockyard.yaml ({framework} {release} has wheels for it)'
               ] if fits else []
    series = {**fw.get("older", {}), **fw["versions"]}
    newer = [k for k in sorted(series, key=Version) if Version(series[k]["latest"]) > Version(release)
             and _between(python, *series[k]["python"])]
    if newer:
        options.append(f"allow {framework}>={series[newer[0]]['latest']} (it has wheels for Python {python})")
    detail = says.replace("published wheels", "has them") if lo else says
    return CompatError(
        f"{shown} installs {framework} {release}, which published no wheels for Python {python} ({detail}); "
        "building it from source needs a compiler and its old build tools, which the image does not have",
        "; or ".join(options) or f"pin a {framework} release that supports Python {python}",
    )


def resolve(
    *,
    python: str,
    framework: str | None,
    framework_version: str | None,
    gpu: bool,
    cuda: str | None,
    devel: bool,
    base_image: str | None,
    local_bases: frozenset[str] = frozenset(),
) -> Resolution:
    """Pick every base/compat choice, each with a reason. ``local_bases`` are image refs present locally."""
    data = compat_data()
    choices: list[Choice] = []
    warnings: list[str] = []
    supported = data["python"]["supported"]
    if python not in supported:
        nearest = nearest_python(python, supported)
        raise CompatError(
            f"Python {python} is not supported (supported: {', '.join(supported)})",
            f'set python: "{nearest}" in dockyard.yaml (the nearest; `dockyard base bootstrap` can make a base for '
            f"each supported one), and check that requirements pinned for Python {python} have releases for it")
    choices.append(Choice("python", python, "from dockyard.yaml"))
    series = release = None
    spec: dict[str, Any] = {}
    fw: dict[str, Any] = {}
    if framework:
        if framework not in data["frameworks"]:
            raise CompatError(
                f"unknown framework {framework!r}", f"use one of: {', '.join(sorted(data['frameworks']))}, or leave it unset"
            )
        fw = data["frameworks"][framework]
        pick = _series(framework, framework_version, data, python)
        series, release = pick.series, pick.release
        spec = fw["versions"][series] if series is not None else {}
        choices.append(Choice("framework", f"{framework} {release}", pick.why))
        warnings += [pick.warning] if pick.warning else []
        if series is not None:
            _check_python(framework, series, python, fw)
        elif gpu and not cuda:
            raise CompatError(f"dockyard does not know which CUDA builds {framework} {release} published",
                              'set gpu.cuda in dockyard.yaml (e.g. gpu.cuda: "11.8") to the build the release has')
    target = "gpu" if gpu else "cpu"
    cuda_version = None
    renames: list[tuple[str, str]] = []
    indexes: list[str] = []
    if gpu:
        cuda_version = _pick_cuda(framework, series, spec, cuda)
        cuda_full = data["cuda_images"].get(cuda_version)
        if cuda_full is None:
            raise CompatError(f"no NVIDIA base image known for CUDA {cuda_version}", f"use one of {', '.join(data['cuda_images'])}")
        kind = "devel" if devel else "runtime"
        final = data["bases"]["gpu"][kind].format(cuda_full=cuda_full)
        builder = final
        choices.append(Choice("cuda", cuda_version, _cuda_why(framework, series, cuda)))
        choices.append(Choice("base", final, f"NVIDIA CUDA {kind} image" + ("" if devel else " (devel only when gpu.devel: true)")))
        if framework == "torch":
            indexes.append(fw["cuda_index"].format(cuda_nodot=cuda_version.replace(".", "")))
        if fw.get("gpu_package"):
            renames.append((fw["pypi"], fw["gpu_package"]))
    else:
        final, builder = _cpu_bases(python, data, local_bases, choices)
        if framework == "torch":
            indexes.append(fw["cpu_index"])
            choices.append(Choice("wheels", "torch CPU", "CPU target: CPU-only torch wheels (no ~2.7 GB of CUDA libraries)"))
        if fw.get("cpu_package"):
            # Never swapped: the CPU build is another distribution, so importlib.metadata.version()
            # of the name the project declared would raise PackageNotFoundError in user code.
            choices.append(Choice(
                "wheels", fw["pypi"],
                f"not swapped for {fw['cpu_package']}: it installs under another name, so "
                f"importlib.metadata.version({fw['pypi']!r}) (BentoML's save_model calls it) would fail; "
                f"list {fw['cpu_package']} in the requirements yourself if nothing needs that"))
    if base_image:
        final = builder = base_image
        # The override replaces the base choices made above; show only the one that holds.
        choices = [c for c in choices if c.what not in ("base", "builder")]
        choices.append(Choice("base", base_image, "base_image override in dockyard.yaml"))
    return Resolution(
        python=python,
        framework=framework,
        framework_series=series,
        framework_release=release,
        target=target,
        cuda=cuda_version,
        base_final=final,
        base_builder=builder,
        extra_index_urls=tuple(indexes),
        package_renames=tuple(renames),
        system_packages=tuple(fw.get("system_packages", ())),
        warm_imports=tuple(fw.get("warm_imports", ())),
        uv_version=data["uv_version"],
        choices=tuple(choices),
        warnings=tuple(warnings),
    )


def _check_python(framework: str, series: str, python: str, fw: dict[str, Any]) -> None:
    lo, hi = fw["versions"][series]["python"]
    if _pyver(lo) <= _pyver(python) <= _pyver(hi):
        return
    nearest_py = lo if _pyver(python) < _pyver(lo) else hi
    fits = [s for s, v in fw["versions"].items() if _pyver(v["python"][0]) <= _pyver(python) <= _pyver(v["python"][1])]
    other = f", or {framework} {max(fits, key=Version)} which supports Python {python}" if fits else ""
    raise CompatError(
        f"{framework} {series} does not support Python {python} (it supports {lo} to {hi})",
        f'set python: "{nearest_py}" in dockyard.yaml (nearest valid){other}',
    )


def _cuda_why(framework: str | None, series: str | None, asked: str | None) -> str:
    if asked:
        return "gpu.cuda in dockyard.yaml" + (f" (published for {framework} {series})" if framework else "")
    return f"newest CUDA build published for {framework} {series}"


def _pick_cuda(framework: str | None, series: str | None, spec: dict[str, Any], cuda: str | None) -> str:
    if not framework or series is None:  # no framework, or a release older than the data: gpu.cuda decides
        if not cuda:
            raise CompatError("gpu.enabled needs a framework or gpu.cuda", 'set gpu.cuda: "12.4" or the framework')
        return cuda
    builds: list[str] = spec.get("cuda", [])
    if not builds:
        raise CompatError(f"{framework} {series} has no CUDA build", "set gpu.enabled: false (it runs on CPU)")
    if cuda is None:
        return max(builds, key=Version)
    if cuda not in builds:
        nearest = min(builds, key=lambda b: abs(float(b) - float(cuda)))
        raise CompatError(
            f"{framework} {series} publishes no CUDA {cuda} build (it has {', '.join(builds)})",
            f'set gpu.cuda: "{nearest}" (nearest valid)',
        )
    return cuda


def _cpu_bases(python: str, data: dict[str, Any], local: frozenset[str], choices: list[Choice]) -> tuple[str, str]:
    cpu = data["bases"]["cpu"]
    local_final = cpu["local_final"].format(python=python)
    local_builder = cpu["local_builder"].format(python=python)
    if local_final in local:
        builder = local_builder if local_builder in local else local_final
        choices.append(Choice("base", local_final, "local air-gapped base from `dockyard base bootstrap` (no registry pull)"))
        if builder == local_builder:
            choices.append(Choice("builder", builder, "local build base with binutils (strips shared libraries)"))
        return local_final, builder
    final = cpu["final"].format(python=python)
    choices.append(Choice("base", final, "official slim Python image for CPU targets" + _offline_note(python)))
    return final, cpu["builder"].format(python=python)


def _offline_note(python: str) -> str:
    """What to do when the engine cannot pull the official image (no registry access)."""
    release = suite_for(python)
    if release is not None:
        return (f"; pulled unless the engine has it. If it cannot be pulled, the build makes a local one from "
                f"{release.label} packages first (`dockyard base bootstrap --python {python}`, a few minutes, once)")
    return (f"; pulled unless the engine has it. No Debian or Ubuntu release dockyard knows ships Python {python} "
            f"as python3, so `dockyard base bootstrap` cannot make it offline (it can make {releases_text()})")
