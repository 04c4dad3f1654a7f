"""Other tools' HTTP protocols served beside dockyard's own (one hook in routes.py).

Each protocol module offers ``routes(owner) -> {path: handler}`` (handlers take the same
arguments as Routes' own) and ``openapi_paths() -> {path: item}``. Our own paths win a clash,
except the few a protocol's ``overrides`` names for its own kind of model.
"""

from __future__ import annotations

from typing import Any

from . import cog_protocol, mlflow_protocol

PROTOCOLS = (mlflow_protocol, cog_protocol)


def extra_routes(owner: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for proto in PROTOCOLS:
        out.update(proto.routes(owner))
    return out


def overrides(owner: Any) -> dict[str, Any]:
    """Paths where another tool's answer replaces ours (Cog's /openapi.json for a Cog predictor)."""
    return cog_protocol.overrides(owner)


def extra_openapi() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for proto in PROTOCOLS:
        out.update(proto.openapi_paths())
    return out
