"""Other tools' HTTP protocols served beside dockyard's own (one hook in routes.py).

Each protocol module offers ``routes(owner) -> {path: handler}`` (handlers take the same
arguments as Routes' own) and ``openapi_paths() -> {path: item}``. Our own paths win a clash.
"""

from __future__ import annotations

from typing import Any

from . import mlflow_protocol

PROTOCOLS = (mlflow_protocol,)


def extra_routes(owner: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for proto in PROTOCOLS:
        out.update(proto.routes(owner))
    return out


def extra_openapi() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for proto in PROTOCOLS:
        out.update(proto.openapi_paths())
    return out
