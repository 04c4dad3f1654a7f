"""The runner: a bounded queue in front of one predict thread, with dynamic batching.

No HTTP here. The event loop calls ``submit()``; the predict thread runs batches; results come
back to the loop with ``call_soon_threadsafe``. Batching is adaptive: requests that arrive while
the model is busy are taken together in the next call (up to ``max_batch_size``), and
``max_wait_s`` > 0 additionally holds a lone request that long for company.

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


class Job:
    __slots__ = ("item", "callback", "done", "enqueued")

    def __init__(self, item: Any, callback: Callback) -> None:
        self.item, self.callback, self.done = item, callback, False
        self.enqueued = time.perf_counter()


class Runner:
    def __init__(self, model: Any, loop: asyncio.AbstractEventLoop, *, max_batch_size: int,
                 max_wait_s: float, max_queue: int, on_batch: Callable[[int], None]) -> None:
        self.model, self.loop = model, loop
        self.max_batch_size = max_batch_size
        self.max_batch = 1  # until setup() tells us whether the model takes batches
        self.max_wait_s, self.max_queue, self.on_batch = max_wait_s, max_queue, on_batch
        self.pending: deque[Job] = deque()
        self.busy = False  # a batch is in the predict thread
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._thread_main, name="dockyard-predict", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, on_ready: Callable[[BaseException | None], None]) -> None:
        """Start the thread: setup(), warm-up, then ``on_ready(error)`` on the loop."""
        self._on_ready = on_ready
        self._thread.start()

    def stop(self) -> None:
        self._inbox.put(None)

    @property
    def idle(self) -> bool:
        return not self.busy and not self.pending

    # -- loop side -------------------------------------------------------------------------
    def submit(self, item: Any, callback: Callback) -> Job:
        if len(self.pending) >= self.max_queue:
            raise QueueFull
        job = Job(item, callback)
        self.pending.append(job)
        if not self.busy:
            if len(self.pending) >= self.max_batch:
                self._dispatch()
            elif self.max_wait_s > 0:
                if self._timer is None:
                    self._timer = self.loop.call_later(self.max_wait_s, self._dispatch)
            elif not self._scheduled:
                # call_soon runs after every socket that was readable in this loop turn has been
                # read, so requests that arrived together go out together at no added latency.
                self._scheduled = True
                self.loop.call_soon(self._dispatch)
        return job

    def _dispatch(self) -> None:
        self._scheduled = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.busy:
            return
        batch: list[Job] = []
        while self.pending and len(batch) < self.max_batch:
            job = self.pending.popleft()
            if not job.done:  # timed out or client went away while queued
                batch.append(job)
        if batch:
            self.busy = True
            self._inbox.put(batch)

    def _finish(self, batch: list[Job], results: list[Any] | None, error: BaseException | None) -> None:
        self.busy = False
        self.on_batch(len(batch))
        for i, job in enumerate(batch):
            if job.done:
                continue
            job.done = True
            result = results[i] if results is not None else None
            if isinstance(result, Failure):
                job.callback(None, result.error)
            else:
                job.callback(result, error)
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
        self.loop.call_soon_threadsafe(self._on_ready, error)
        if error is not None:
            return
        inbox, call = self._inbox, self.loop.call_soon_threadsafe
        while True:
            batch = inbox.get()
            if batch is None:
                return
            try:
                results, err = self.model.run([job.item for job in batch]), None
            except Exception as exc:
                results, err = None, exc
                log("predict_failed", "error", error=f"{type(exc).__name__}: {exc}",
                    traceback=traceback.format_exc(), batch_size=len(batch))
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
