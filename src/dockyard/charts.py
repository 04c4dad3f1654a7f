"""`dockyard models plot`: a model's metrics across versions, and per-step training curves.

Two renderers of the same series: :func:`terminal_chart` (pure text, always available) and
:func:`write_png` (matplotlib, only when it is installed). :func:`model_series` reads the
store; everything else is pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError, UsageError
from .store import Store
from .store.metrics import FILENAME, read_series

Series = Mapping[str, Sequence[tuple[float, float]]]  # label -> (x, y) points
MARKERS = "●○◆◇■□▲△"


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    series: Series


@dataclass(frozen=True)
class ModelCharts:
    """One chart per metric across versions, and one per stepped metric of one version."""

    ref: str  # the version whose per-step curves are shown
    versions: tuple[Chart, ...]
    steps: tuple[Chart, ...] = field(default=())


def model_series(store: Store, ref: str, *, metric: str | None = None) -> ModelCharts:
    """Charts for NAME (or NAME:N): every version's final metrics, and NAME:N's (default: the
    latest version's) per-step values from its metrics.json."""
    name = ref.partition(":")[0]
    versions = store.list_versions(name)
    if not versions:
        raise UsageError(f"model {name!r} has no versions", "train one with `dockyard train`, see `dockyard models list`")
    chosen = store.get(ref if ":" in ref else f"{name}:latest")
    names = sorted({k for v in versions for k in v.metrics})
    if metric is not None and metric not in names and metric not in _step_series(store, chosen.ref):
        raise UsageError(f"{name} has no metric {metric!r}", f"metrics of {name}: {', '.join(names) or 'none'}")
    across = tuple(
        Chart(f"{m} across versions of {name}", "version",
              {m: [(float(v.version), float(v.metrics[m])) for v in versions if m in v.metrics]})
        for m in names if metric in (None, m)
    )
    steps = tuple(
        Chart(f"{m} per step, {chosen.ref}", "step", {m: [(float(s), y) for s, y in points]})
        for m, points in sorted(_step_series(store, chosen.ref).items())
        if len(points) > 1 and metric in (None, m)
    )
    return ModelCharts(chosen.ref, across, steps)


def _step_series(store: Store, ref: str) -> dict[str, list[tuple[int, float]]]:
    try:
        return read_series(store.artifact_path(ref, FILENAME))
    except StoreError:  # the run logged no metrics.json
        return {}


# -- text --------------------------------------------------------------------------------
def terminal_chart(chart: Chart, *, width: int = 60, height: int = 12) -> str:
    """A line chart in plain text: points on a character grid, y range on the left, x range
    below, one marker per series. Pure."""
    points = [(x, y) for pts in chart.series.values() for x, y in pts if math.isfinite(y)]
    if not points:
        return f"{chart.title}\n  (no values)"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if y0 == y1:
        y0, y1 = y0 - 0.5, y1 + 0.5
    grid = [[" "] * width for _ in range(height)]
    for marker, pts in zip(MARKERS, chart.series.values()):
        cells = [(_scale(x, x0, x1, width), height - 1 - _scale(y, y0, y1, height)) for x, y in pts if math.isfinite(y)]
        for (ca, ra), (cb, rb) in zip(cells, cells[1:]):  # a dotted line between neighbours
            for i in range(1, max(abs(cb - ca), abs(rb - ra))):
                t = i / max(abs(cb - ca), abs(rb - ra))
                c, r = round(ca + (cb - ca) * t), round(ra + (rb - ra) * t)
                if grid[r][c] == " ":
                    grid[r][c] = "·"
        for c, r in cells:
            grid[r][c] = marker
    top, bottom = _num(y1), _num(y0)
    pad = max(len(top), len(bottom))
    lines = [chart.title]
    for i, row in enumerate(grid):
        label = top if i == 0 else bottom if i == height - 1 else ""
        lines.append(f"{label:>{pad}} ┤{''.join(row)}")
    lines.append(f"{'':>{pad}} └{'─' * width}")
    left, right = _num(x0), _num(x1)
    lines.append(f"{'':>{pad}}  {left}{right:>{max(1, width - len(left))}}  ({chart.x_label})")
    if len(chart.series) > 1:
        lines.append("  " + "   ".join(f"{m} {label}" for m, label in zip(MARKERS, chart.series)))
    return "\n".join(lines)


def _scale(value: float, low: float, high: float, cells: int) -> int:
    if high == low:
        return cells // 2
    return min(cells - 1, max(0, round((value - low) / (high - low) * (cells - 1))))


def _num(value: float) -> str:
    return f"{value:.4g}"


# -- PNG ---------------------------------------------------------------------------------
def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401  # optional: only `models plot --png` needs it
    except ImportError:
        return False
    return True


def write_png(charts: ModelCharts, path: Path) -> Path:
    """All charts in one PNG, one panel each. Needs matplotlib (``pip install matplotlib``)."""
    if not have_matplotlib():
        raise UsageError("writing a PNG needs matplotlib, which is not installed",
                         "pip install matplotlib (the terminal chart needs nothing)")
    import matplotlib  # optional dependency, imported only when a PNG is asked for

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    panels = [*charts.versions, *charts.steps]
    if not panels:
        raise UsageError(f"{charts.ref} has no metrics to plot", "log some with dockyard.log_metric in train.py")
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.8 * len(panels)), squeeze=False)
    for ax, chart in zip(axes[:, 0], panels):
        for label, pts in chart.series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_title(chart.title)
        ax.set_xlabel(chart.x_label)
        ax.grid(alpha=0.3)
        if chart.x_label == "version":
            ax.set_xticks([p[0] for pts in chart.series.values() for p in pts])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
