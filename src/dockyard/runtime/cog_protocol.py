"""Cog's HTTP API beside ours, for Cog predictors (see cog_model.py):

    POST /predictions   {"input": {...}} -> {"status": "succeeded", "output": ..., "id", "logs",
                        "metrics": {"predict_time"}, "created_at", "started_at", "completed_at"};
                        a failing predict() -> 200 {"status": "failed", "error": "..."}, as Cog does;
                        invalid input -> 422 {"detail": [{"loc": ["body", "input", NAME], "msg", "type"}]}
    GET  /health-check  {"status": "READY" | "STARTING" | "SETUP_FAILED", "setup": {...}}
    GET  /openapi.json  Cog's schema (components.schemas.Input / Output / PredictionRequest ...)
    GET  /              {"docs_url": "/docs", "openapi_url": "/openapi.json"}

Asynchronous predictions (``Prefer: respond-async`` with webhooks), ``PUT /predictions/{id}``
and cancelation are not supported: a request asking for them gets a 400 that says so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from .cog_model import CogModel, _now, openapi
from .http import HttpConnection
from .jsonfast import dumps, loads
from .model import InputError
from .runner import QueueFull


def routes(owner: Any) -> dict[str, Any]:
    if not isinstance(owner.model, CogModel):
        return {}
    proto = CogProtocol(owner)
    return {"/predictions": proto.predictions, "/health-check": proto.health, "/": proto.root}


def overrides(owner: Any) -> dict[str, Any]:
    """Paths where Cog's answer replaces ours for a Cog predictor."""
    if not isinstance(owner.model, CogModel):
        return {}
    return {"/openapi.json": CogProtocol(owner).openapi}


def openapi_paths() -> dict[str, Any]:
    return {}


class CogProtocol:
    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def root(self, conn: HttpConnection, method: str, *_: Any) -> None:
        conn.respond(200, dumps({"docs_url": "/docs", "openapi_url": "/openapi.json"}))

    def health(self, conn: HttpConnection, method: str, *_: Any) -> None:
        model: CogModel = self.owner.model
        if model.setup_failed:
            status, setup = "SETUP_FAILED", "failed"
        elif self.owner.ready and not self.owner.draining:
            status, setup = ("BUSY" if self.owner.runner.busy else "READY"), "succeeded"
        else:
            status, setup = "STARTING", "starting"
        conn.respond(200, dumps({"status": status, "setup": {
            "started_at": model.setup_started or None, "completed_at": model.setup_completed or None,
            "status": setup, "logs": ""}}))

    def openapi(self, conn: HttpConnection, method: str, *_: Any) -> None:
        self.owner.require_loaded()
        conn.respond(200, dumps(openapi(self.owner.model)))

    def predictions(self, conn: HttpConnection, method: str, query: str, headers: Mapping[str, str],
                    body: bytes) -> None:
        if method != "POST":
            conn.respond(405, dumps({"detail": "Method Not Allowed"}), extra=b"allow: POST\r\n")
            return
        if "respond-async" in headers.get("prefer", ""):
            conn.respond(400, dumps({"detail": "asynchronous predictions (Prefer: respond-async, webhooks) are "
                                               "not supported by dockyard; send the request without that header "
                                               "to get the output in the response"}))
            return
        self.owner.require_ready()
        try:
            request = loads(body) if body else {}
        except ValueError:
            conn.respond(422, _detail(["body"], "Invalid JSON body", "value_error.jsondecode"))
            return
        if not isinstance(request, dict) or not isinstance(request.get("input", {}), dict):
            conn.respond(422, _detail(["body", "input"], "input must be an object", "type_error.dict"))
            return
        given = request.get("input") or {}
        try:
            item = self.owner.model.from_json(given)
        except InputError as exc:
            text = str(exc)
            name = text.split(":", 1)[0].split(" ", 1)[0]
            loc = ["body", "input", name] if name in self.owner.model.info.inputs else ["body", "input"]
            conn.respond(422, _detail(loc, text, "value_error"))
            return
        reply: dict[str, Any] = {"id": request.get("id") or uuid.uuid4().hex, "input": given, "output": None,
                                 "logs": "", "error": None, "status": "processing",
                                 "created_at": request.get("created_at") or _now(), "started_at": _now()}
        started = time.perf_counter()

        def done(result: Any, error: BaseException | None) -> None:
            reply["completed_at"] = _now()
            reply["metrics"] = {"predict_time": round(time.perf_counter() - started, 6)}
            if error is None:
                reply.update(status="succeeded", output=result)
            else:
                reply.update(status="failed", error=str(error) or type(error).__name__)
            try:
                conn.respond(200, dumps(reply))
            except (TypeError, ValueError) as exc:  # an output JSON cannot carry
                reply.update(status="failed", output=None, error=f"the output is not JSON: {exc}")
                conn.respond(200, dumps(reply))

        try:
            conn.job = self.owner.runner.submit(item, done)
        except QueueFull:
            conn.respond(409, dumps({"detail": "Already running a prediction"}), extra=b"retry-after: 1\r\n")


def _detail(loc: list[str], msg: str, kind: str) -> bytes:
    return dumps({"detail": [{"loc": loc, "msg": msg, "type": kind}]})
