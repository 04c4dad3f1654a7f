"""The runner: a bounded queue in front of one predict thread, with adaptive batching and a
watchdog.

No HTTP here. The event loop calls ``submit()``; the predict thread runs batches; results come
back to the loop with ``call_soon_threadsafe``.

Batching is adaptive. A request that finds the model idle goes out at the end of the current
loop turn (with whatever else arrived in that turn); requests that arrive while the model is
busy are taken together in the next call (up to ``max_batch_size``). ``max_wait_s`` is only a
cap: a request waits for company only while another connection is part-way through sending its
request, i.e. when company is known to be coming. A lone request never waits.

The watchdog: a batch running longer than ``hang_after_s`` (the request timeout) or a dead
predict thread is a *fault*. ``fault()`` names it and says since when, so routes can fail
readiness at once and liveness after a grace period. Every exception from user code, SystemExit
and KeyboardInterrupt included, becomes a failed request and one log line; the thread carries on.

The thread also runs ``setup()`` and the warm-up, so frameworks that care which thread loaded
the model see the same thread at predict time.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable

from .logs import log
from .model import Failure

Callback = Callable[[Any, BaseException | None], None]


class QueueFull(Exception):
    """More requests are waiting than --max-queue allows."""


class PredictFailed(Exception):
    """predict() raised (already logged by the runner); ``error`` is what it raised."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(describe(error))
        self.error = error


class Fault:
    """Why the model cannot serve now, and since when (monotonic seconds)."""

    __slots__ = ("problem", "since")

    def __init__(self, problem: str, since: float) -> None:
        self.problem, self.since = problem, since


def describe(exc: BaseException) -> str:
    """``Type: message`` for a log line; never raises, even for an exception whose str() does."""
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - user exceptions can fail in __str__
        text = "<str() failed>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fix_for(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return "predict() called sys.exit(); raise an exception instead (the server keeps serving)"
    if isinstance(exc, KeyboardInterrupt):
        return "predict() raised KeyboardInterrupt; raise an ordinary exception instead"
    return "fix the exception in predict() (traceback in this log)"


class Job:
    __slots__ = ("item", "callback", "done", "enqueued")

    def __init__(self, item: Any, callback: Callback) -> None:
        self.item, self.callback, self.done = item, callback, False
        self.enqueued = time.perf_counter()


class Runner:
    def __init__(self, model: Any, loop: asyncio.AbstractEventLoop, *, max_batch_size: int,
                 max_wait_s: float, max_queue: int, on_batch: Callable[[int], None],
                 hang_after_s: float = 0.0, liveness_grace_s: float = 30.0,
                 arriving: Callable[[], bool] = lambda: False) -> None:
        self.model, self.loop = model, loop
        self.max_batch_size = max_batch_size
        self.max_batch = 1  # until setup() tells us whether the model takes batches
        self.max_wait_s, self.max_queue, self.on_batch = max_wait_s, max_queue, on_batch
        self.hang_after_s, self.liveness_grace_s = hang_after_s, liveness_grace_s
        self.arriving = arriving  # another request is part-way in: worth waiting for
        self.pending: deque[Job] = deque()
        self.busy = False  # a batch is in the predict thread
        self.batch_started = 0.0  # monotonic start of the batch in the thread
        self.serving = False  # setup and warm-up succeeded
        self.died_at = 0.0  # monotonic time the predict thread ended unexpectedly
        self.waits = 0  # times a request was held for company (/metrics: dockyard_batch_waits_total)
        self._running: list[Job] = []
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        self._reported: Fault | None = None  # the fault the log has announced
        self._unhealthy_logged = False
        self._stopping = False
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._thread_main, name="dockyard-predict", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, on_ready: Callable[[BaseException | None], None]) -> None:
        """Start the thread: setup(), warm-up, then ``on_ready(error)`` on the loop."""
        self._on_ready = on_ready
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        if self._watch_timer is not None:
            self._watch_timer.cancel()
        self._inbox.put(None)

    @property
    def idle(self) -> bool:
        return not self.busy and not self.depth()

    def depth(self) -> int:
        """Requests waiting for the model (timed-out and abandoned ones do not count)."""
        return sum(1 for job in self.pending if not job.done)

    # -- watchdog ----------------------------------------------------------------------------
    def fault(self, now: float | None = None) -> Fault | None:
        """Why the model cannot take requests now, or None when it can."""
        if not self.serving:
            return None
        now = time.monotonic() if now is None else now
        if not self.died_at and not self._thread.is_alive() and not self._stopping:
            self.died_at = now
        if self.died_at:
            return Fault("the predict thread has stopped", self.died_at)
        if self.busy and self.hang_after_s > 0 and now - self.batch_started > self.hang_after_s:
            return Fault(f"a predict call has run for {now - self.batch_started:.1f} s, over the "
                         f"{self.hang_after_s:g} s request timeout", self.batch_started + self.hang_after_s)
        return None

    def unhealthy(self, now: float | None = None) -> Fault | None:
        """A fault that has lasted longer than the liveness grace: time for a restart."""
        now = time.monotonic() if now is None else now
        fault = self.fault(now)
        if fault is not None and now - fault.since >= self.liveness_grace_s:
            return fault
        return None

    def _watch(self) -> None:
        """Log faults when they start, pass the grace, and end (probes compute them exactly)."""
        now = time.monotonic()
        fault = self.fault(now)
        if fault is not None and self._reported is None:
            log("model_stuck", "error", error=fault.problem,
                fix=f"readiness fails now; liveness fails after {self.liveness_grace_s:g} s "
                    "(--liveness-grace-s) so the orchestrator restarts the server; "
                    "find what blocks predict() (a lock, a network call, an endless loop)")
        elif fault is None and self._reported is not None:
            log("model_recovered", seconds=round(now - self._reported.since, 3))
            self._unhealthy_logged = False
        if fault is not None and not self._unhealthy_logged and now - fault.since >= self.liveness_grace_s:
            self._unhealthy_logged = True
            log("model_unhealthy", "error", error=fault.problem,
                fix="liveness (/healthz) now fails: the orchestrator should restart this server")
        self._reported = fault
        tick = min(1.0, max(0.05, self.hang_after_s / 4)) if self.hang_after_s > 0 else 1.0
        self._watch_timer = self.loop.call_later(tick, self._watch)

    def _thread_ended(self) -> None:
        """The predict thread is gone: answer what it held, since nothing else will."""
        if self._stopping:
            return
        self.fault()  # records died_at
        jobs = self._running + list(self.pending)
        self._running, self.busy = [], False
        self.pending.clear()
        error = PredictFailed(RuntimeError("the predict thread has stopped"))
        for job in jobs:
            if not job.done:
                job.done = True
                job.callback(None, error)

    # -- loop side -------------------------------------------------------------------------
    def submit(self, item: Any, callback: Callback) -> Job:
        pending = self.pending
        if len(pending) >= self.max_queue:
            # Jobs whose request timed out or whose client left stay until popped; drop them now.
            self.pending = pending = deque(job for job in pending if not job.done)
            if len(pending) >= self.max_queue:
                raise QueueFull
        job = Job(item, callback)
        pending.append(job)
        if not self.busy:
            if len(pending) >= self.max_batch:
                self._dispatch()
            elif self._timer is not None:
                if not self.arriving():  # everyone expected is here: go now
                    self._timer.cancel()
                    self._timer = None
                    self._soon()
            elif not self._scheduled:
                if self.max_wait_s > 0 and self.max_batch > 1 and self.arriving():
                    self.waits += 1
                    self._timer = self.loop.call_later(self.max_wait_s, self._dispatch)
                else:
                    self._soon()
        return job

    def _soon(self) -> None:
        # call_soon runs after every socket that was readable in this loop turn has been read,
        # so requests that arrived together go out together at no added latency.
        self._scheduled = True
        self.loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.busy:
            return
        batch: list[Job] = []
        pending = self.pending
        while pending and len(batch) < self.max_batch:
            job = pending.popleft()
            if not job.done:  # timed out or client went away while queued
                batch.append(job)
        if batch:
            self.busy, self.batch_started, self._running = True, time.monotonic(), batch
            self._inbox.put(batch)

    def _finish(self, batch: list[Job], results: list[Any] | None, error: BaseException | None) -> None:
        self.busy, self._running = False, []
        self.on_batch(len(batch))
        for i, job in enumerate(batch):
            if job.done:
                continue
            job.done = True
            result = results[i] if results is not None else None
            if isinstance(result, Failure):
                job.callback(None, PredictFailed(result.error))
            else:
                job.callback(result, error)
        if self._reported is not None:
            if self._watch_timer is not None:
                self._watch_timer.cancel()
            self._watch()  # log the recovery now, not at the next tick
        if self.pending:
            self._dispatch()  # these waited while the model was busy: no extra wait

    # -- predict thread ----------------------------------------------------------------------
    def _thread_main(self) -> None:
        error: BaseException | None = None
        try:
            self.model.setup()
            # Set before ready is announced, so the loop never submits with a stale value.
            self.max_batch = self.max_batch_size if self.model.batchable else 1
            self._warm_up()
        except BaseException as exc:  # SystemExit from user code included: report, don't vanish
            error = exc
        else:
            self.serving = True
        try:
            self.loop.call_soon_threadsafe(self._on_ready, error)
        except RuntimeError:  # loop closed during shutdown
            return
        if error is not None:
            return
        self.loop.call_soon_threadsafe(self._start_watch)
        try:
            self._serve_batches()
        except BaseException as exc:  # a bug of ours: say so loudly rather than hang quietly
            self.died_at = time.monotonic()
            log("predict_thread_died", "error", error=describe(exc),
                traceback="".join(traceback.format_exception(exc)),
                fix="readiness fails now and liveness after --liveness-grace-s; please report this")
            try:
                self.loop.call_soon_threadsafe(self._thread_ended)
            except RuntimeError:
                pass

    def _start_watch(self) -> None:
        if not self._stopping:
            self._watch()

    def _serve_batches(self) -> None:
        inbox, call, run = self._inbox, self.loop.call_soon_threadsafe, self.model.run
        while True:
            batch = inbox.get()
            if batch is None:
                return
            try:
                results, err = run([job.item for job in batch]), None
            except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the thread lives on
                results, err = None, PredictFailed(exc)
                log("predict_failed", "error", error=describe(exc), fix=_fix_for(exc),
                    traceback="".join(traceback.format_exception(exc)), batch_size=len(batch))
            else:
                for result in results:
                    if isinstance(result, Failure):
                        log("predict_failed", "error", error=describe(result.error), fix=_fix_for(result.error),
                            traceback="".join(traceback.format_exception(result.error)), batch_size=1)
            try:
                call(self._finish, batch, results, err)
            except RuntimeError:  # loop closed during shutdown
                return

    def _warm_up(self) -> None:
        from .model import SetupError

        example = self.model.example()
        try:
            item = self.model.from_json(example)
            (result,) = self.model.run([item])
        except Exception as exc:
            raise SetupError(f"the warm-up prediction failed: {type(exc).__name__}: {exc}",
                             "make predict() work on the example input, or set a class attribute "
                             "`example = {...}` with a valid input") from exc
        if isinstance(result, Failure):
            raise SetupError(f"the warm-up prediction failed: {type(result.error).__name__}: {result.error}",
                             "make predict() work on the example input, or set a class attribute "
                             "`example = {...}` with a valid input") from result.error
        if not self.model.outputs:
            from .model import output_specs

            try:
                self.model.outputs = output_specs(self.model.to_tensors(item, result))
            except ImportError:
                # A pure-Python predictor without numpy: /predict works; V2 metadata simply
                # lists no outputs until numpy is installed.
                self.model.outputs = ()
