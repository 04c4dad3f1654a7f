"""Prometheus text exposition (format 0.0.4), kept by hand: no client library in images.

With ``--workers N`` every worker process keeps its own numbers and, about once a second,
publishes them to a directory the supervisor made; whichever worker answers a scrape adds its
siblings' latest numbers to its own, so /metrics always describes the whole server.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left
from typing import Any, Callable

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

    def state(self) -> list[Any]:
        return [list(self.counts), self.total, self.count]

    def add(self, state: list[Any]) -> None:
        counts, total, count = state
        for i, n in enumerate(counts[:len(self.counts)]):
            self.counts[i] += n
        self.total += total
        self.count += count


class Metrics:
    def __init__(self, model_name: str, shared_dir: str | None = None, worker: int = 0) -> None:
        self.model = model_name
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.in_flight: Callable[[], int] = lambda: 0
        self.queue_depth: Callable[[], int] = lambda: 0
        self.model_stuck: Callable[[], int] = lambda: 0  # 1 while the watchdog sees a fault
        self.batch_waits: Callable[[], int] = lambda: 0
        self.shared_dir, self.worker = shared_dir, worker

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(route)
        if hist is None:
            hist = self.latency[route] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    # -- several workers ---------------------------------------------------------------------
    def snapshot(self, scraping: int = 0) -> dict[str, Any]:
        """This process's numbers as JSON-able data (``scraping``: requests not to count in flight)."""
        return {"requests": [[route, status, n] for (route, status), n in self.requests.items()],
                "latency": {route: h.state() for route, h in self.latency.items()},
                "batch": self.batch_size.state(), "in_flight": self.in_flight() - scraping,
                "queue": self.queue_depth(), "stuck": self.model_stuck(), "waits": self.batch_waits()}

    def publish(self) -> None:
        """Write this worker's numbers for its siblings' scrapes (atomically: never half a file)."""
        if not self.shared_dir:
            return
        path = os.path.join(self.shared_dir, f"worker-{self.worker}.json")
        try:
            with open(path + ".tmp", "w") as f:
                json.dump(self.snapshot(), f)
            os.replace(path + ".tmp", path)
        except OSError:
            pass  # the directory went away (shutting down): this scrape shows this worker alone

    def _siblings(self) -> list[dict[str, Any]]:
        if not self.shared_dir:
            return []
        own, found = f"worker-{self.worker}.json", []
        try:
            names = sorted(os.listdir(self.shared_dir))
        except OSError:
            return []
        for name in names:
            if name.endswith(".json") and name != own:
                try:
                    with open(os.path.join(self.shared_dir, name)) as f:
                        found.append(json.load(f))
                except (OSError, ValueError):
                    continue
        return found

    # -- exposition --------------------------------------------------------------------------
    def render(self, scraping: int = 0) -> bytes:
        requests: dict[tuple[str, int], int] = {}
        latency: dict[str, Histogram] = {}
        batch = Histogram(BATCH_BUCKETS)
        in_flight = queue = stuck = waits = 0
        for state in (self.snapshot(scraping), *self._siblings()):
            for route, status, n in state["requests"]:
                requests[(route, status)] = requests.get((route, status), 0) + n
            for route, hist in state["latency"].items():
                latency.setdefault(route, Histogram(LATENCY_BUCKETS)).add(hist)
            batch.add(state["batch"])
            in_flight += state["in_flight"]
            queue += state["queue"]
            stuck += state.get("stuck", 0)
            waits += state.get("waits", 0)
        m = self.model
        lines = ["# HELP dockyard_requests_total HTTP requests answered, by route and status.",
                 "# TYPE dockyard_requests_total counter"]
        for (route, status), n in sorted(requests.items()):
            lines.append(f'dockyard_requests_total{{route="{route}",status="{status}"}} {n}')
        lines += ["# HELP dockyard_request_duration_seconds Time from request parsed to response written.",
                  "# TYPE dockyard_request_duration_seconds histogram"]
        for route, hist in sorted(latency.items()):
            lines += hist.lines("dockyard_request_duration_seconds", f'route="{route}"')
        lines += ["# HELP dockyard_batch_size Requests per predict call.",
                  "# TYPE dockyard_batch_size histogram"]
        lines += batch.lines("dockyard_batch_size", f'model="{m}"')
        lines += ["# HELP dockyard_batch_waits_total Requests held for company because another request was "
                  "part-way in (max_batch_wait_ms caps the hold).",
                  "# TYPE dockyard_batch_waits_total counter", f'dockyard_batch_waits_total{{model="{m}"}} {waits}']
        lines += ["# HELP dockyard_in_flight_requests Requests received and not yet answered.",
                  "# TYPE dockyard_in_flight_requests gauge", f"dockyard_in_flight_requests {in_flight}",
                  "# HELP dockyard_queue_depth Requests waiting for the model.",
                  "# TYPE dockyard_queue_depth gauge", f'dockyard_queue_depth{{model="{m}"}} {queue}',
                  "# HELP dockyard_model_stuck Workers whose model is stuck (a predict call over the request "
                  "timeout, or no predict thread).",
                  "# TYPE dockyard_model_stuck gauge", f'dockyard_model_stuck{{model="{m}"}} {stuck}']
        return ("\n".join(lines) + "\n").encode()
