"""MLflow's scoring protocol beside ours, answered as ``mlflow models serve`` answers it.

    POST /invocations   JSON with exactly one of dataframe_split, dataframe_records, instances,
                        inputs (plus optional params, ignored); or a text/csv body with a header
                        -> 200 {"predictions": [...]}
    GET  /ping, /health 200 "\\n" once the model is ready, 404 before (SageMaker's health check)

Request errors answer 400 ``{"error_code": "BAD_REQUEST", "message": ...}`` and an unsupported
content type 415 text/plain, as mlflow's server does. The request becomes one item of the
model's own input schema (columns, or named tensors), so /invocations shares the queue, the
batching, the limits and the metrics of /predict and V2.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from .http import HttpConnection
from .jsonfast import dumps, loads
from .model import ArrayModel, InputError

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CONTENT_TYPES = ("text/csv", "application/json")


class BadRequest(Exception):
    """A request mlflow would answer with 400 BAD_REQUEST (or ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def routes(owner: Any) -> dict[str, Any]:
    """Handlers to add to ``Routes._static`` (``owner`` is the Routes instance)."""
    proto = MlflowProtocol(owner)
    return {"/invocations": proto.invocations, "/ping": proto.ping, "/health": proto.ping}


def openapi_paths() -> dict[str, Any]:
    bad = {"description": "bad request", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}}}}}}
    return {
        "/invocations": {"post": {
            "summary": "MLflow scoring protocol (dataframe_split, dataframe_records, instances, inputs, CSV)",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"type": "object", "properties": {k: {} for k in FORMATS}}},
                "text/csv": {"schema": {"type": "string"}}}},
            "responses": {"200": {"description": "predictions", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"predictions": {}}}}}}, "400": bad,
                "415": {"description": "unsupported content type"}}}},
        "/ping": {"get": {"summary": "MLflow/SageMaker health check", "responses": {
            "200": {"description": "ready"}, "404": {"description": "not loaded"}}}},
    }


class MlflowProtocol:
    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def ping(self, conn: HttpConnection, method: str, *_: Any) -> None:
        if method not in ("GET", "HEAD"):
            conn.respond(405, b"use GET", b"text/plain", b"allow: GET\r\n")
            return
        ready = self.owner.ready and not self.owner.draining
        conn.respond(200 if ready else 404, b"\n")

    def invocations(self, conn: HttpConnection, method: str, query: str, headers: Mapping[str, str],
                    body: bytes) -> None:
        if method != "POST":
            conn.respond(405, b"use POST", b"text/plain", b"allow: POST\r\n")
            return
        self.owner.require_ready()
        model = self.owner.model
        try:
            columns = parse_request(headers.get("content-type", ""), body, [s.name for s in model.inputs],
                                    isinstance(model, ArrayModel) and _by_column(model))
            item = model.from_json(columns)
        except BadRequest as exc:
            if exc.status == 415:
                conn.respond(415, exc.message.encode(), b"text/plain")
            else:
                conn.respond(exc.status, _error(exc.message))
            return
        except InputError as exc:
            conn.respond(400, _error(f"Failed to enforce schema of data: {exc}"))
            return
        self.owner.submit(conn, item, lambda result: conn.respond(200, dumps({"predictions": predictions(result)})))


def _by_column(model: ArrayModel) -> bool:
    """One value per row per input: a column-based signature (or a model of scalar inputs)."""
    return all(len(s.shape) == 1 for s in model.inputs)


def _error(message: str) -> bytes:
    return dumps({"error_code": "BAD_REQUEST", "message": message})


def predictions(result: Any) -> Any:
    """Named output arrays -> mlflow's JSON: one output as a list, several as records."""
    if not isinstance(result, dict):
        return _plain(result)
    values = {k: _plain(v) for k, v in result.items()}
    if len(values) == 1:
        return next(iter(values.values()))
    rows = {len(v) for v in values.values() if isinstance(v, list)}
    if len(rows) == 1 and len([v for v in values.values() if isinstance(v, list)]) == len(values):
        n = rows.pop()
        return [{k: v[i] for k, v in values.items()} for i in range(n)]
    return values


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


# -- request parsing (pure) ---------------------------------------------------------------------
def parse_request(content_type: str, body: bytes, names: list[str], by_column: bool) -> dict[str, Any]:
    """An /invocations body -> {input name: value} for the model's from_json."""
    mime, *params = [p.strip() for p in content_type.split(";")]
    options = dict(p.partition("=")[::2] for p in params if p)
    if options.get("charset", "utf-8").lower() != "utf-8":
        raise BadRequest("The scoring server only supports UTF-8", 415)
    if set(options) - {"charset"}:
        raise BadRequest(f"Unrecognized content type parameters: {', '.join(sorted(set(options) - {'charset'}))}.", 415)
    mime = mime.lower()
    if mime == "text/csv":
        return _from_csv(body, names)
    if mime != "application/json":
        raise BadRequest("This predictor only supports the following content types: "
                         f"Types: {list(CONTENT_TYPES)}. Got '{content_type}'.", 415)
    try:
        doc = loads(body) if body else None
    except ValueError as exc:
        raise BadRequest(f"Ensure that input is a valid JSON formatted string. Error: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"The input must be a JSON dictionary with exactly one of the input fields "
                         f"{set(FORMATS)}. Received {'a list' if isinstance(doc, list) else type(doc).__name__}.")
    keys = [k for k in FORMATS if k in doc]
    if len(keys) != 1:
        raise BadRequest(f"The input must be a JSON dictionary with exactly one of the input fields "
                         f"{set(FORMATS)}. Received dictionary with input fields: {list(doc)}.")
    key = keys[0]
    value = doc[key]
    if key == "dataframe_split":
        return _from_split(value, names)
    if key == "dataframe_records":
        return _from_records(value, names)
    return _from_tensor_input(key, value, names, by_column)


def _from_split(value: Any, names: list[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise BadRequest('dataframe_split must be an object like {"columns": [...], "data": [[...], ...]}')
    columns = value.get("columns") or names
    data = value["data"]
    if not all(isinstance(row, list) and len(row) == len(columns) for row in data):
        raise BadRequest(f"dataframe_split: every row of 'data' must have {len(columns)} values, one per column")
    return _select({str(c): [row[i] for row in data] for i, c in enumerate(columns)}, names)


def _from_records(value: Any, names: list[str]) -> dict[str, Any]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise BadRequest('dataframe_records must be a list of objects like [{"column": value, ...}]')
    return _select({n: [r.get(n) for r in value] for n in names if all(n in r for r in value)}, names)


def _from_tensor_input(key: str, value: Any, names: list[str], by_column: bool) -> dict[str, Any]:
    if isinstance(value, dict):
        return _select({str(k): v for k, v in value.items()}, names)
    if not isinstance(value, list):
        raise BadRequest(f"'{key}' must be a list (rows) or an object of named inputs")
    if value and all(isinstance(r, dict) for r in value):  # instances as records
        return _from_records(value, names)
    if len(names) == 1 and not by_column:
        return {names[0]: value}
    if by_column:
        if len(names) == 1 and all(not isinstance(v, list) for v in value):
            return {names[0]: value}
        if all(isinstance(r, list) and len(r) == len(names) for r in value):  # rows, columns by position
            return {n: [r[i] for r in value] for i, n in enumerate(names)}
        raise BadRequest(f"'{key}': each row must have {len(names)} values ({', '.join(names)})")
    raise BadRequest(f"'{key}': this model takes several inputs ({', '.join(names)}); send an object of them")


def _select(columns: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Keep the model's columns (mlflow ignores extra ones); name a missing one."""
    missing = [n for n in names if n not in columns]
    if missing:
        raise BadRequest(f"Failed to enforce schema of data: missing input column(s) {missing}; "
                         f"the model takes {names}")
    return {n: columns[n] for n in names}


def _from_csv(body: bytes, names: list[str]) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"Ensure that input is a valid UTF-8 encoded string. Error: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise BadRequest("Failed to parse input as a Pandas DataFrame: a CSV body needs a header row and "
                         "at least one data row")
    header, data = rows[0], [r for r in rows[1:] if r]
    if header and header[0] == "" and all(r and r[0].isdigit() for r in data):  # a pandas index column
        header, data = header[1:], [r[1:] for r in data]
    if not all(len(r) == len(header) for r in data):
        raise BadRequest(f"Failed to parse input as a Pandas DataFrame: every row needs {len(header)} values")
    return _select({h: [_number(r[i]) for r in data] for i, h in enumerate(header)}, names)


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text
