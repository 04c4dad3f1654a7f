"""URL -> handler. The only place where errors become HTTP statuses.

    POST /predict                                   JSON object of named inputs -> {"output": ...}
    GET  /healthz /readyz /metrics /openapi.json /docs
    KServe V2: GET /v2, /v2/health/live, /v2/health/ready,
               GET /v2/models/{name}[/versions/{v}][/ready], POST .../infer (JSON + binary tensors)
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Mapping
from typing import Any, Callable

from . import docs, protocols
from .http import HttpConnection, error_body
from .jsonfast import JsonError, dumps, loads
from .logs import log
from .metrics import Metrics
from .model import InputError
from .runner import PredictFailed, QueueFull, Runner
from .wire import RequestParser
from .tensors import TensorError, decode_input, encode_output

JSON = b"application/json"
SERVER_NAME = "dockyard"
SERVER_VERSION = "0.1.0"


class HttpError(Exception):
    def __init__(self, status: int, message: str, extra: bytes = b"") -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class V2Request:
    """What an infer call needs after its result comes back."""

    __slots__ = ("id", "binary_all", "wanted")

    def __init__(self, request_id: Any, binary_all: bool, wanted: dict[str, bool] | None) -> None:
        self.id, self.binary_all, self.wanted = request_id, binary_all, wanted


class Routes:
    def __init__(self, model: Any, *, max_body_bytes: int, request_timeout_s: float,
                 max_batch_size: int, max_batch_wait_ms: float, max_queue: int,
                 loop: asyncio.AbstractEventLoop, metrics_dir: str | None = None, worker: int = 0,
                 liveness_grace_s: float = 30.0) -> None:
        self.model, self.loop = model, loop
        self.max_body_bytes = max_body_bytes
        self.parser_class: type[RequestParser] = RequestParser  # the server sets llhttp's when it loads
        self.timeout = request_timeout_s
        self.connections: set[HttpConnection] = set()
        self.ready = False
        self.draining = False
        self.metrics = Metrics(model.name, metrics_dir, worker)
        self.runner = Runner(model, loop, max_batch_size=max_batch_size, max_wait_s=max_batch_wait_ms / 1000,
                             max_queue=max_queue, on_batch=self.metrics.observe_batch,
                             hang_after_s=request_timeout_s, liveness_grace_s=liveness_grace_s,
                             arriving=self._arriving)
        self.metrics.queue_depth = self.runner.depth
        self.metrics.model_stuck = lambda: int(self.runner.fault() is not None)
        self.metrics.batch_waits = lambda: self.runner.waits
        self.metrics.in_flight = lambda: sum(1 for c in self.connections if c.busy)
        self._static: dict[str, Callable[[HttpConnection, str, str, Mapping[str, str], bytes], None]] = {
            "/predict": self.predict, "/healthz": self.healthz, "/readyz": self.readyz,
            "/v2/health/live": self.healthz, "/v2/health/ready": self.readyz, "/v2": self.server_meta,
            "/metrics": self.prometheus, "/openapi.json": self.openapi, "/docs": self.docs_page,
        }
        # MLflow's /invocations, Cog's /predictions, ... (Cog's /openapi.json for a Cog predictor)
        self._static = {**protocols.extra_routes(self), **self._static, **protocols.overrides(self)}

    def _arriving(self) -> bool:
        """Whether another connection is part-way through sending a request (batching waits for it)."""
        return any(c.waiting_since and not c.busy for c in self.connections)

    # -- http.App --------------------------------------------------------------------------
    def record(self, route: str, status: int, seconds: float) -> None:
        self.metrics.observe_request(route, status, seconds)

    def routable(self, method: str, path: str) -> bool:
        """Whether a route exists, before the body arrives (Expect: 100-continue)."""
        return path in self._static or path.startswith("/v2/models/")

    def handle(self, conn: HttpConnection, method: str, path: str, query: str,
               headers: Mapping[str, str], body: bytes) -> None:
        try:
            handler = self._static.get(path)
            if handler is not None:
                conn.route = path
                handler(conn, method, query, headers, body)
            elif path.startswith("/v2/models/"):
                conn.route = "/v2/models"
                self.v2_model(conn, method, path, headers, body)
            else:
                raise HttpError(404, f"no route {path}; see /docs or /openapi.json for the API")
        except HttpError as exc:
            conn.respond(exc.status, error_body(exc.message), extra=exc.extra)
        except (InputError, TensorError) as exc:
            conn.respond(422 if conn.route == "/predict" else 400, error_body(str(exc)))
        except Exception:
            log("handler_failed", "error", path=path, traceback=traceback.format_exc())
            conn.respond(500, error_body("internal server error; the server log has the details"))

    # -- health and metadata ---------------------------------------------------------------
    def healthz(self, conn: HttpConnection, method: str, *_: Any) -> None:
        """Liveness: fails once the model has been stuck longer than --liveness-grace-s."""
        _only(method, "GET")
        fault = self.runner.unhealthy()
        if fault is None:
            conn.respond(200, b'{"status":"alive"}')
        else:
            conn.respond(503, dumps({"status": "unhealthy", "error": f"{fault.problem}; restart the server"}))

    def readyz(self, conn: HttpConnection, method: str, *_: Any) -> None:
        _only(method, "GET")
        fault = self.runner.fault()
        if self.ready and not self.draining and fault is None:
            conn.respond(200, b'{"status":"ready"}')
        elif fault is not None and not self.draining:
            conn.respond(503, dumps({"status": "stuck", "error": f"not ready: {fault.problem}"}))
        else:
            state = "draining" if self.draining else "loading"
            conn.respond(503, dumps({"status": state, "error": f"not ready: {state}"}))

    def server_meta(self, conn: HttpConnection, method: str, *_: Any) -> None:
        _only(method, "GET")
        conn.respond(200, dumps({"name": SERVER_NAME, "version": SERVER_VERSION,
                                 "extensions": ["binary_tensor_data"]}))

    def prometheus(self, conn: HttpConnection, method: str, *_: Any) -> None:
        _only(method, "GET")
        conn.respond(200, self.metrics.render(scraping=1), b"text/plain; version=0.0.4")

    def openapi(self, conn: HttpConnection, method: str, *_: Any) -> None:
        _only(method, "GET")
        self._need_loaded()
        doc = docs.openapi(self.model)
        doc["paths"] = {**protocols.extra_openapi(), **doc["paths"]}
        conn.respond(200, dumps(doc))

    def docs_page(self, conn: HttpConnection, method: str, *_: Any) -> None:
        _only(method, "GET")
        self._need_loaded()
        conn.respond(200, docs.page(self.model), b"text/html; charset=utf-8")

    def _need_loaded(self) -> None:
        if not self.ready:
            raise HttpError(503, "the model is still loading; retry shortly", b"retry-after: 1\r\n")

    # -- predictions -----------------------------------------------------------------------
    def predict(self, conn: HttpConnection, method: str, query: str, headers: Mapping[str, str], body: bytes) -> None:
        _only(method, "POST")
        self._need_ready()
        item = self.model.from_json(_parse_json(body))
        self._submit(conn, item, lambda result: conn.respond(200, dumps(self.model.to_json(item, result))))

    def _need_ready(self) -> None:
        if self.draining:
            raise HttpError(503, "the server is shutting down; retry on another replica", b"retry-after: 1\r\n")
        self._need_loaded()
        fault = self.runner.fault()
        if fault is not None:
            raise HttpError(503, f"the model is not responding ({fault.problem}); retry on another replica",
                            b"retry-after: 1\r\n")

    def _submit(self, conn: HttpConnection, item: Any, ok: Callable[[Any], None]) -> None:
        def done(result: Any, error: BaseException | None) -> None:
            if error is None:
                try:
                    ok(result)
                    return
                except Exception as exc:  # e.g. an output JSON cannot encode
                    log("output_failed", "error", error=f"{type(exc).__name__}: {exc}",
                        fix="return numbers, strings, lists, dicts or numpy arrays from predict()",
                        traceback="".join(traceback.format_exception(exc)))
                    conn.respond(500, error_body("the prediction's output could not be encoded; "
                                                 "the server log has the details"))
                    return
            if isinstance(error, PredictFailed) and isinstance(error.error, (InputError, TensorError)):
                conn.respond(400, error_body(str(error.error)))
                return
            # The runner has logged it, once, with its traceback.
            conn.respond(500, error_body("the prediction failed; the server log has the details"))

        try:
            conn.job = self.runner.submit(item, done)
        except QueueFull:
            raise HttpError(503, f"the server is overloaded ({self.runner.max_queue} requests queued); "
                                 "retry after the Retry-After seconds", b"retry-after: 1\r\n") from None
        if self.timeout > 0:
            conn.timer = self.loop.call_later(self.timeout, self._timed_out, conn)

    def _timed_out(self, conn: HttpConnection) -> None:
        conn.timer = None
        if conn.job is not None:
            conn.job.done = True
        conn.respond(504, error_body(f"the prediction took over {self.timeout:g} s (--request-timeout-s)"))

    # -- for other tools' protocols (protocols.py) --------------------------------------------
    def require_ready(self) -> None:
        """Raise the 503 a prediction gets while loading or draining."""
        self._need_ready()

    def require_loaded(self) -> None:
        self._need_loaded()

    def submit(self, conn: HttpConnection, item: Any, ok: Callable[[Any], None]) -> None:
        """Queue one item with the same limits, timeout and error answers as /predict."""
        self._submit(conn, item, ok)

    # -- KServe V2 ---------------------------------------------------------------------------
    def v2_model(self, conn: HttpConnection, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        parts = path[len("/v2/models/"):].rstrip("/").split("/")
        name, rest = parts[0], parts[1:]
        if name != self.model.name:
            raise HttpError(404, f"unknown model {name!r}; this server serves {self.model.name!r}")
        if len(rest) >= 2 and rest[0] == "versions":
            if rest[1] != self.model.version:
                raise HttpError(404, f"unknown version {rest[1]!r} of model {name!r}; "
                                     f"this server serves version {self.model.version!r}")
            rest = rest[2:]
        if not rest:
            _only(method, "GET")
            self._need_loaded()
            conn.respond(200, dumps({
                "name": self.model.name, "versions": [self.model.version], "platform": self.model.platform,
                "inputs": [s.metadata() for s in self.model.inputs],
                "outputs": [s.metadata() for s in self.model.outputs]}))
        elif rest == ["ready"]:
            _only(method, "GET")
            fault = self.runner.fault()
            ready = self.ready and not self.draining and fault is None
            conn.respond(200 if ready else 503, b"{}" if ready else error_body(
                f"model not ready: {fault.problem}" if fault is not None else "model not ready"))
        elif rest == ["infer"]:
            _only(method, "POST")
            self._need_ready()
            self.infer(conn, headers, body)
        else:
            raise HttpError(404, f"no route {path}; V2 model routes end in /ready or /infer")

    def infer(self, conn: HttpConnection, headers: Mapping[str, str], body: bytes) -> None:
        header_len = headers.get("inference-header-content-length")
        binary = None
        if header_len is not None:
            # Digits only: int() would also take "+5", " 5" and "5_0".
            digits = header_len.isascii() and header_len.isdigit() and len(header_len) <= 18
            n = int(header_len) if digits else -1
            if not 0 < n <= len(body):
                raise HttpError(400, f"Inference-Header-Content-Length {header_len!r} is not a length "
                                     f"within the {len(body)}-byte body; send the JSON header's size in bytes")
            request, binary = _parse_json(body[:n]), memoryview(body)[n:]
        else:
            request = _parse_json(body)
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
            raise HttpError(400, "an infer request is a JSON object with an 'inputs' list of tensors")
        tensors, offset = {}, 0
        for tensor in request["inputs"]:
            name, array, used = decode_input(tensor, binary, offset)
            if name in tensors:
                raise HttpError(400, f"input {name!r} appears twice in 'inputs'; send each tensor once")
            tensors[name] = (array, tensor["datatype"])
            offset += used
        if binary is not None and offset != len(binary):
            raise HttpError(400, f"{len(binary) - offset} bytes of binary data follow the last tensor; "
                                 "binary_data_size of the inputs must add up to the data sent")
        item = self.model.from_tensors(tensors)
        v2 = _v2_request(request, self.model)
        self._submit(conn, item, lambda result: self._infer_reply(conn, v2, item, result))

    def _infer_reply(self, conn: HttpConnection, v2: V2Request, item: Any, result: Any) -> None:
        arrays = self.model.to_tensors(item, result)
        names = list(arrays) if v2.wanted is None else list(v2.wanted)
        outputs, blobs = [], []
        for name in names:
            binary = v2.binary_all if v2.wanted is None else v2.wanted[name]
            out, raw = encode_output(name, arrays[name], binary)
            outputs.append(out)
            if raw is not None:
                blobs.append(raw)
        reply: dict[str, Any] = {"model_name": self.model.name, "model_version": self.model.version,
                                 "outputs": outputs}
        if v2.id is not None:
            reply["id"] = v2.id
        head = dumps(reply)
        if not blobs:
            conn.respond(200, head)
            return
        conn.respond(200, head + b"".join(blobs), b"application/octet-stream",
                     b"inference-header-content-length: %d\r\n" % len(head))


def _v2_request(request: dict[str, Any], model: Any) -> V2Request:
    params = request.get("parameters") or {}
    binary_all = bool(isinstance(params, dict) and params.get("binary_data_output"))
    wanted = None
    if request.get("outputs"):
        known = {s.name for s in model.outputs}
        wanted = {}
        for out in request["outputs"]:
            name = out.get("name") if isinstance(out, dict) else None
            if not isinstance(name, str) or name not in known:
                raise HttpError(400, f"unknown output {name!r}; this model has {', '.join(sorted(known))}")
            p = out.get("parameters") or {}
            wanted[name] = bool(p.get("binary_data", binary_all)) if isinstance(p, dict) else binary_all
    return V2Request(request.get("id"), binary_all, wanted)


def _parse_json(body: bytes | memoryview) -> Any:
    if not body:
        raise HttpError(400, "the request body is empty; send a JSON object")
    try:
        return loads(bytes(body) if isinstance(body, memoryview) else body)
    except JsonError as exc:
        raise HttpError(400, f"the request body is not valid JSON: {exc}") from None


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, f"use {allowed} for this route, not {method}", b"allow: %s\r\n" % allowed.encode())
