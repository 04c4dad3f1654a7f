"""Prometheus text exposition (format 0.0.4), kept by hand: no client library in images.

Each worker process keeps its own numbers; Prometheus sums them across scrapes per pod.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Callable

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds, self.counts = bounds, [0] * (len(bounds) + 1)
        self.total, self.count = 0.0, 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out, running = [], 0
        for bound, n in zip(self.bounds, self.counts):
            running += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{suffix} {self.total}", f"{name}_count{suffix} {self.count}"]
        return out


class Metrics:
    def __init__(self, model_name: str) -> None:
        self.model = model_name
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.in_flight = 0
        self.queue_depth: Callable[[], int] = lambda: 0

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(route)
        if hist is None:
            hist = self.latency[route] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def render(self) -> bytes:
        m = self.model
        lines = ["# HELP dockyard_requests_total HTTP requests answered, by route and status.",
                 "# TYPE dockyard_requests_total counter"]
        for (route, status), n in sorted(self.requests.items()):
            lines.append(f'dockyard_requests_total{{route="{route}",status="{status}"}} {n}')
        lines += ["# HELP dockyard_request_duration_seconds Time from request parsed to response written.",
                  "# TYPE dockyard_request_duration_seconds histogram"]
        for route, hist in sorted(self.latency.items()):
            lines += hist.lines("dockyard_request_duration_seconds", f'route="{route}"')
        lines += ["# HELP dockyard_batch_size Requests per predict call.",
                  "# TYPE dockyard_batch_size histogram"]
        lines += self.batch_size.lines("dockyard_batch_size", f'model="{m}"')
        lines += ["# HELP dockyard_in_flight_requests Requests received and not yet answered.",
                  "# TYPE dockyard_in_flight_requests gauge", f"dockyard_in_flight_requests {self.in_flight}",
                  "# HELP dockyard_queue_depth Requests waiting for the model.",
                  "# TYPE dockyard_queue_depth gauge", f'dockyard_queue_depth{{model="{m}"}} {self.queue_depth()}']
        return ("\n".join(lines) + "\n").encode()
