"""Match SBOM packages to OSV advisories, online (api.osv.dev) or from a local OSV dump.

Range evaluation follows the OSV schema's reference algorithm: events sorted by version,
``introduced`` opens, ``fixed`` (>=) and ``last_affected`` (>) close, ``limit`` caps the range;
several introduced/fixed pairs in one range are fine. Withdrawn advisories are skipped and
advisories that alias each other (CVE <-> GHSA <-> PYSEC) become one finding.
"""

from __future__ import annotations

import json
import logging
import math
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dockyard.errors import ScanError
from dockyard.scan.findings import Finding, Report, severity_rank
from dockyard.scan.sbom import Package, normalize_pypi_name
from dockyard.scan.versions import same_version, sort_key

log = logging.getLogger(__name__)

OSV_API = "https://api.osv.dev/v1"
Record = Mapping[str, Any]


# -- the local database -------------------------------------------------------------------------


@dataclass(frozen=True)
class OsvDatabase:
    source: str
    index: Mapping[tuple[str, str], tuple[Record, ...]]  # (ecosystem base, name) -> records
    newest_modified: datetime | None
    newest_file_mtime: datetime | None
    skipped_files: tuple[str, ...] = ()

    @property
    def age_reference(self) -> datetime | None:
        return self.newest_modified or self.newest_file_mtime

    def candidates(self, pkg: Package) -> tuple[Record, ...]:
        base = _ecosystem_base(pkg.ecosystem)
        found: list[Record] = []
        for name in _lookup_names(pkg):
            found.extend(self.index.get((base, name), ()))
        return tuple(found)


def _ecosystem_base(ecosystem: str) -> str:
    return ecosystem.split(":", 1)[0].lower()


def _key_name(ecosystem: str, name: str) -> str:
    return normalize_pypi_name(name) if _ecosystem_base(ecosystem) == "pypi" else name


def _lookup_names(pkg: Package) -> tuple[str, ...]:
    names = [_key_name(pkg.ecosystem, pkg.name)]
    if pkg.source_name and pkg.source_name != pkg.name:
        names.append(pkg.source_name)
    return tuple(names)


def _iter_dump(path: Path) -> Iterator[tuple[str, bytes, float]]:
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            if file.is_file():
                yield str(file), file.read_bytes(), file.stat().st_mtime
    elif zipfile.is_zipfile(path):
        mtime = path.stat().st_mtime
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".json") and not info.is_dir():
                    yield f"{path}!{info.filename}", zf.read(info), mtime
    else:
        raise ScanError(f"--osv-db {path} is neither a directory nor a zip file",
                        "pass a folder of OSV JSON files or an osv.dev all.zip "
                        "(https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip)")


def load_osv_database(path: Path) -> OsvDatabase:
    """Index an OSV dump: a directory of OSV JSON files (any depth) or an osv.dev ``all.zip``."""
    if not path.exists():
        raise ScanError(f"OSV database {path} does not exist", "download an OSV dump or drop --osv-db")
    index: dict[tuple[str, str], list[Record]] = {}
    newest: datetime | None = None
    newest_mtime = 0.0
    skipped: list[str] = []
    for name, data, mtime in _iter_dump(path):
        newest_mtime = max(newest_mtime, mtime)
        try:
            record = json.loads(data)
        except ValueError:
            skipped.append(name)
            continue
        if not isinstance(record, dict) or "id" not in record:
            skipped.append(name)
            continue
        modified = _parse_time(record.get("modified"))
        if modified and (newest is None or modified > newest):
            newest = modified
        keys = {(_ecosystem_base(a["package"]["ecosystem"]), _key_name(a["package"]["ecosystem"], a["package"]["name"]))
                for a in record.get("affected") or [] if a.get("package", {}).get("name")}
        for key in keys:
            index.setdefault(key, []).append(record)
    mtime_dt = datetime.fromtimestamp(newest_mtime, UTC) if newest_mtime else None
    return OsvDatabase(str(path), MappingProxyType({k: tuple(v) for k, v in index.items()}), newest,
                       mtime_dt, tuple(skipped))


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)  # 3.11 reads the trailing Z
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def freshness_warning(db: OsvDatabase, max_age_days: int, now: datetime | None = None) -> str | None:
    reference = db.age_reference
    if reference is None:
        return f"OSV database {db.source} is empty; no vulnerabilities can be found with it"
    age = (now or datetime.now(UTC)) - reference
    if age > timedelta(days=max_age_days):
        return (f"OSV database {db.source} is {age.days} days old (limit {max_age_days}); "
                "download a fresh dump so new advisories are matched")
    return None


# -- range evaluation -----------------------------------------------------------------------------


class UnparsableVersion(Exception):
    """A version in the package or the advisory does not parse for its ecosystem."""


def _key(ecosystem: str, version: str, range_type: str) -> Any:
    key = sort_key(ecosystem, version, range_type=range_type)
    if key is None:
        raise UnparsableVersion(version)
    return key


def range_affects(ecosystem: str, version: str, range_: Mapping[str, Any]) -> bool:
    """OSV reference algorithm for one ECOSYSTEM / SEMVER range."""
    rtype = range_.get("type", "ECOSYSTEM")
    v = _key(ecosystem, version, rtype)
    events: list[tuple[int, Any, str, str]] = []  # (is_not_zero, key, kind, raw)
    limits: list[Any] = []
    for event in range_.get("events") or []:
        for kind in ("introduced", "fixed", "last_affected", "limit"):
            raw = event.get(kind)
            if raw is None:
                continue
            if kind == "limit":
                if raw != "*":
                    limits.append(_key(ecosystem, raw, rtype))
            elif kind == "introduced" and raw == "0":
                events.append((0, None, kind, raw))  # "0" sorts before every version
            else:
                events.append((1, _key(ecosystem, raw, rtype), kind, raw))
    events.sort(key=lambda e: (1, e[1]) if e[0] else (0,))
    affected = False
    for _, key, kind, _raw in events:
        if kind == "introduced" and (key is None or v >= key):
            affected = True
        elif kind == "fixed" and v >= key or kind == "last_affected" and v > key:
            affected = False
    if affected and limits and not any(v < lim for lim in limits):
        return False
    return affected


def fixed_versions(ecosystem: str, version: str, affected: Mapping[str, Any]) -> list[str]:
    """``fixed`` versions above ``version`` in the ranges that hit it (for the fix hint)."""
    out = []
    for range_ in affected.get("ranges") or []:
        for event in range_.get("events") or []:
            raw = event.get("fixed")
            if raw is None:
                continue
            try:
                if _key(ecosystem, raw, range_.get("type", "ECOSYSTEM")) > _key(ecosystem, version, range_.get("type", "ECOSYSTEM")):
                    out.append(raw)
            except UnparsableVersion:
                continue
    return out


def _package_matches(pkg: Package, affected: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether an ``affected`` entry names ``pkg``; returns the version to compare (source for Debian)."""
    package = affected.get("package") or {}
    eco = str(package.get("ecosystem", ""))
    if _ecosystem_base(eco) != _ecosystem_base(pkg.ecosystem):
        return False, ""
    # "Debian:12" only matches Debian 12; an unversioned side matches any release.
    if ":" in eco and ":" in pkg.ecosystem and eco.split(":")[1] != pkg.ecosystem.split(":")[1]:
        return False, ""
    name = _key_name(eco, str(package.get("name", "")))
    if name == _key_name(pkg.ecosystem, pkg.name):
        return True, pkg.version
    if pkg.source_name and name == pkg.source_name:
        return True, pkg.source_version or pkg.version
    return False, ""


@dataclass(frozen=True)
class Match:
    package: Package
    record: Record
    fixed: tuple[str, ...]


def match_record(pkg: Package, record: Record) -> Match | None:
    """A Match when ``record`` affects ``pkg``; raises UnparsableVersion when it cannot tell."""
    if record.get("withdrawn"):
        return None
    unparsable: UnparsableVersion | None = None
    for affected in record.get("affected") or []:
        hit, version = _package_matches(pkg, affected)
        if not hit:
            continue
        eco = pkg.ecosystem
        if any(same_version(eco, version, listed) for listed in affected.get("versions") or []):
            return Match(pkg, record, tuple(fixed_versions(eco, version, affected)))
        for range_ in affected.get("ranges") or []:
            if range_.get("type") not in {"ECOSYSTEM", "SEMVER"}:
                continue  # GIT ranges name commits, not released versions
            try:
                if range_affects(eco, version, range_):
                    return Match(pkg, record, tuple(fixed_versions(eco, version, affected)))
            except UnparsableVersion as exc:
                unparsable = exc
    if unparsable:
        raise unparsable
    return None


# -- severity -----------------------------------------------------------------------------------

_WORD_SEVERITY = {"critical": "critical", "high": "high", "important": "high", "moderate": "medium",
                  "medium": "medium", "low": "low", "negligible": "low", "unimportant": "low"}


def _roundup(value: float) -> float:
    as_int = round(value * 100000)
    return as_int / 100000.0 if as_int % 10000 == 0 else (math.floor(as_int / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """CVSS v3.0/3.1 base score from its vector string (None if it is not a v3 vector)."""
    parts = dict(p.split(":", 1) for p in vector.split("/")[1:] if ":" in p)
    if not vector.startswith("CVSS:3"):
        return None
    try:
        scope_changed = parts["S"] == "C"
        av = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}[parts["AV"]]
        ac = {"L": 0.77, "H": 0.44}[parts["AC"]]
        pr = {"N": 0.85, "L": 0.68 if scope_changed else 0.62, "H": 0.5 if scope_changed else 0.27}[parts["PR"]]
        ui = {"N": 0.85, "R": 0.62}[parts["UI"]]
        cia = [{"H": 0.56, "L": 0.22, "N": 0.0}[parts[k]] for k in ("C", "I", "A")]
    except KeyError:
        return None
    iss = 1 - (1 - cia[0]) * (1 - cia[1]) * (1 - cia[2])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if scope_changed else 6.42 * iss
    exploitability = 8.22 * av * ac * pr * ui
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if scope_changed else impact + exploitability
    return _roundup(min(total, 10.0))


def score_to_severity(score: float) -> str:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


def record_severity(record: Record) -> str | None:
    """Severity from database_specific, a CVSS v3 vector, or ecosystem_specific; None if unknown."""
    word = str((record.get("database_specific") or {}).get("severity") or "").lower()
    if word in _WORD_SEVERITY:
        return _WORD_SEVERITY[word]
    for entry in record.get("severity") or []:
        score = entry.get("score", "")
        parsed = cvss3_base_score(score) if str(entry.get("type", "")).startswith("CVSS_V3") else None
        if parsed is None:
            try:
                parsed = float(score)
            except (TypeError, ValueError):
                parsed = None
        if parsed is not None:
            return score_to_severity(parsed)
    for affected in record.get("affected") or []:
        specific = affected.get("ecosystem_specific") or {}
        word = str(specific.get("severity") or specific.get("urgency") or "").lower()
        if word in _WORD_SEVERITY:
            return _WORD_SEVERITY[word]
    return None


# -- dedupe and findings ------------------------------------------------------------------------


def _ids(record: Record) -> set[str]:
    return {str(record["id"]), *(str(a) for a in record.get("aliases") or [])}


def _group_by_alias(matches: list[Match]) -> list[list[Match]]:
    groups: list[tuple[set[str], list[Match]]] = []
    for match in matches:
        ids = _ids(match.record)
        joined = [g for g in groups if g[0] & ids]
        merged_ids, merged = set(ids), [match]
        for g in joined:
            merged_ids |= g[0]
            merged.extend(g[1])
            groups.remove(g)
        groups.append((merged_ids, merged))
    return [g[1] for g in groups]


def _primary_id(group: list[Match]) -> str:
    ids = sorted({str(m.record["id"]) for m in group})
    # Prefer a CVE (everyone knows it), then GHSA, then the rest.
    every = sorted(set().union(*(_ids(m.record) for m in group)))
    for prefix in ("CVE-", "GHSA-"):
        for candidate in every:
            if candidate.startswith(prefix):
                return candidate
    return ids[0]


def findings_from_matches(matches: Iterable[Match]) -> list[Finding]:
    by_package: dict[str, list[Match]] = {}
    for m in matches:
        by_package.setdefault(m.package.purl, []).append(m)
    findings: list[Finding] = []
    for group_list in by_package.values():
        for group in _group_by_alias(group_list):
            pkg = group[0].package
            severities = [s for m in group if (s := record_severity(m.record))]
            severity = max(severities, key=severity_rank) if severities else "medium"
            all_ids = sorted(set().union(*(_ids(m.record) for m in group)))
            summary = next((m.record.get("summary") for m in group if m.record.get("summary")), "")
            fixes = sorted({f for m in group for f in m.fixed},
                           key=lambda f: sort_key(pkg.ecosystem, f) or f)
            detail = f"{pkg.purl}; ids: {', '.join(all_ids)}"
            if not severities:
                detail += "; severity unknown (assumed medium)"
            fix = f"upgrade {pkg.name} to {fixes[0]} or later" if fixes else "no fixed version published yet"
            title = f"{pkg.name} {pkg.version}: {summary}" if summary else f"{pkg.name} {pkg.version} is vulnerable"
            findings.append(Finding(_primary_id(group), severity, title, pkg.location or pkg.purl, detail, fix))
    return findings


def match_packages(packages: Iterable[Package], lookup: Any) -> tuple[list[Finding], list[str]]:
    """Match ``packages`` against ``lookup.candidates(pkg)``; returns findings and warnings."""
    matches: list[Match] = []
    warnings: list[str] = []
    for pkg in packages:
        seen: set[str] = set()
        for record in lookup.candidates(pkg):
            if record["id"] in seen:
                continue
            seen.add(record["id"])
            try:
                match = match_record(pkg, record)
            except UnparsableVersion as exc:
                warnings.append(f"could not compare {pkg.name} {pkg.version} with {record['id']} (version {exc})")
                continue
            if match:
                matches.append(match)
    return findings_from_matches(matches), warnings


# -- online ------------------------------------------------------------------------------------


class OsvUnreachable(Exception):
    pass


def _post(url: str, body: Any, timeout: float) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return _fetch(req, timeout)


def _fetch(req: urllib.request.Request | str, timeout: float) -> Any:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise OsvUnreachable(str(exc)) from exc


@dataclass(frozen=True)
class OnlineLookup:
    """Records fetched from api.osv.dev for a package list, served like the local index."""

    by_purl: Mapping[str, tuple[Record, ...]]

    def candidates(self, pkg: Package) -> tuple[Record, ...]:
        return self.by_purl.get(pkg.purl, ())


def query_osv_api(packages: list[Package], *, timeout: float = 5.0, api: str | None = None) -> OnlineLookup:
    """querybatch for ids, then fetch each advisory; raises OsvUnreachable on any network failure."""
    api = api or os.environ.get("DOCKYARD_OSV_API") or OSV_API  # a mirror (or, in tests, a dead port)
    ids_for: dict[str, set[str]] = {}
    for start in range(0, len(packages), 1000):  # the API takes at most 1000 queries per batch
        chunk = packages[start:start + 1000]
        queries = [{"package": {"ecosystem": p.ecosystem, "name": p.source_name if p.ecosystem.startswith("Debian") and p.source_name else p.name},
                    "version": p.source_version if p.ecosystem.startswith("Debian") and p.source_version else p.version}
                   for p in chunk]
        result = _post(f"{api}/querybatch", {"queries": queries}, timeout)
        for pkg, res in zip(chunk, result.get("results") or []):
            ids_for.setdefault(pkg.purl, set()).update(v["id"] for v in res.get("vulns") or [])
    records: dict[str, Record] = {}
    for vid in sorted(set().union(*ids_for.values()) if ids_for else set()):
        records[vid] = _fetch(f"{api}/vulns/{vid}", timeout)
    return OnlineLookup(MappingProxyType({purl: tuple(records[i] for i in sorted(ids)) for purl, ids in ids_for.items()}))


# -- entry point --------------------------------------------------------------------------------


def scan_vulnerabilities(packages: Iterable[Package], *, target: str = "packages", osv_db: Path | None = None,
                         offline: bool = False, max_db_age_days: int = 30, timeout: float = 5.0,
                         now: datetime | None = None) -> Report:
    """Vulnerability findings for ``packages``: from ``osv_db`` when given, else the OSV API unless offline.

    Fails closed: data that cannot be reached, or a dump older than ``max_db_age_days``, goes into
    the report's ``not_checked`` (which fails any ``--fail-on``), never into a silent pass."""
    pkgs = list(packages)
    warnings: list[str] = []
    not_checked: list[str] = []
    lookup: Any
    if osv_db is not None:
        db = load_osv_database(Path(osv_db))
        stale = freshness_warning(db, max_db_age_days, now)
        if stale:
            not_checked.append(f"advisories newer than the vulnerability data: {stale}")
        if db.skipped_files:
            warnings.append(f"{len(db.skipped_files)} file(s) in {db.source} are not OSV JSON and were skipped")
        lookup = db
        check = f"vulnerabilities (OSV dump {db.source})"
    elif offline:  # an explicit opt-out, not a check that failed: said loudly, does not fail the gate
        return Report(target, (), (
            "vulnerabilities not requested: --offline without --osv-db DIR|ZIP (pass a local OSV dump to match)",))
    else:
        try:
            lookup = query_osv_api(pkgs, timeout=timeout)
        except OsvUnreachable as exc:
            return Report(target, (), (), not_checked=(
                f"vulnerabilities: OSV API unreachable ({exc}); pass --osv-db with a local OSV dump",))
        check = "vulnerabilities (OSV API)"
    findings, match_warnings = match_packages(pkgs, lookup)
    return Report(target, tuple(findings), tuple(warnings + match_warnings), checks=(f"{check}, {len(pkgs)} packages",),
                  not_checked=tuple(not_checked))
