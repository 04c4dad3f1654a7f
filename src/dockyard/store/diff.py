"""What changed between two model versions (pure), and its text rendering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .records import ModelVersion


@dataclass(frozen=True)
class MetricChange:
    old: float | None  # None: the metric is new in b
    new: float | None  # None: the metric is gone in b

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old


@dataclass(frozen=True)
class VersionDiff:
    a: str
    b: str
    params_added: Mapping[str, str]
    params_removed: Mapping[str, str]
    params_changed: Mapping[str, tuple[str, str]]
    metrics: Mapping[str, MetricChange]
    artifacts_added: tuple[str, ...]
    artifacts_removed: tuple[str, ...]
    artifacts_changed: tuple[str, ...]
    image: tuple[str, str] | None
    data: tuple[str, str] | None
    git: tuple[str, str] | None
    code: tuple[str, str] | None
    command: tuple[str, str] | None

    @property
    def identical(self) -> bool:
        return not any((self.params_added, self.params_removed, self.params_changed,
                        self.metrics, self.artifacts_added, self.artifacts_removed,
                        self.artifacts_changed, self.image, self.data, self.git, self.code,
                        self.command))


def _pair(old: str, new: str) -> tuple[str, str] | None:
    return None if old == new else (old, new)


def _git(v: ModelVersion) -> str:
    commit = (v.git.commit or "no git")[:12]
    return f"{commit} (dirty)" if v.git.dirty else commit


def _image(v: ModelVersion) -> str:
    return v.image.digest or v.image.id


def diff_versions(a: ModelVersion, b: ModelVersion) -> VersionDiff:
    pa, pb = dict(a.params), dict(b.params)
    ma, mb = dict(a.metrics), dict(b.metrics)
    arts_a = {x.path: x.sha256 for x in a.artifacts}
    arts_b = {x.path: x.sha256 for x in b.artifacts}
    metrics = {
        k: MetricChange(ma.get(k), mb.get(k))
        for k in sorted(ma.keys() | mb.keys())
        if ma.get(k) != mb.get(k)
    }
    return VersionDiff(
        a=a.ref,
        b=b.ref,
        params_added={k: pb[k] for k in sorted(pb.keys() - pa.keys())},
        params_removed={k: pa[k] for k in sorted(pa.keys() - pb.keys())},
        params_changed={k: (pa[k], pb[k]) for k in sorted(pa.keys() & pb.keys()) if pa[k] != pb[k]},
        metrics=metrics,
        artifacts_added=tuple(sorted(arts_b.keys() - arts_a.keys())),
        artifacts_removed=tuple(sorted(arts_a.keys() - arts_b.keys())),
        artifacts_changed=tuple(sorted(
            p for p in arts_a.keys() & arts_b.keys() if arts_a[p] != arts_b[p])),
        image=_pair(_image(a), _image(b)),
        data=_pair(a.data_fingerprint or "none", b.data_fingerprint or "none"),
        git=_pair(_git(a), _git(b)),
        code=_pair(a.code_hash or "none", b.code_hash or "none"),
        command=_pair(" ".join(a.command), " ".join(b.command)),
    )


def _num(value: float) -> str:
    return f"{value:.6g}"


def render_diff(d: VersionDiff) -> str:
    """Plain text, one change per line: ``+`` added, ``-`` removed, ``~`` changed."""
    lines = [f"{d.a} -> {d.b}"]
    if d.identical:
        return lines[0] + "\n  no differences\n"

    params = [f"  ~ {k}: {o} -> {n}" for k, (o, n) in d.params_changed.items()]
    params += [f"  + {k}: {v}" for k, v in d.params_added.items()]
    params += [f"  - {k}: {v}" for k, v in d.params_removed.items()]
    lines += _section("params", params)

    metrics = []
    for k, m in d.metrics.items():
        if m.old is None and m.new is not None:
            metrics.append(f"  + {k}: {_num(m.new)}")
        elif m.new is None and m.old is not None:
            metrics.append(f"  - {k}: {_num(m.old)}")
        elif m.old is not None and m.new is not None and m.delta is not None:
            metrics.append(f"  ~ {k}: {_num(m.old)} -> {_num(m.new)} ({m.delta:+.6g})")
    lines += _section("metrics", metrics)

    arts = [f"  ~ {p}" for p in d.artifacts_changed]
    arts += [f"  + {p}" for p in d.artifacts_added] + [f"  - {p}" for p in d.artifacts_removed]
    lines += _section("artifacts", arts)

    for label, pair in (("image", d.image), ("data", d.data), ("git", d.git),
                        ("code", d.code), ("command", d.command)):
        lines.append(f"{label}: {pair[0]} -> {pair[1]}" if pair else f"{label}: unchanged")
    return "\n".join(lines) + "\n"


def _section(title: str, rows: list[str]) -> list[str]:
    return [f"{title}:", *rows] if rows else [f"{title}: unchanged"]
