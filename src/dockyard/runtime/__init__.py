"""The serving runtime that ships inside images.

It is copied into images as the top-level package ``dockyard_runtime`` (``/opt/dockyard/runtime``)
and started with ``python -m dockyard_runtime``; outside containers it runs as
``python -m dockyard.runtime``. So it imports only the standard library (numpy and the user's
framework lazily) and uses relative imports only: no fastapi/pydantic/starlette/uvicorn, which
users pin for their own code.

Layers (routes -> runner -> model), after Cog's last Python server:

    config.py     flags + DOCKYARD_* env vars -> ServeConfig
    model.py      the Model interface; user predictors (setup/predict) and their type hints
    loaders.py    zero-code models by file type (sklearn, ONNX, XGBoost, LightGBM, TorchScript, Keras)
    tensors.py    V2 datatypes, JSON/binary tensor decoding and encoding
    runner.py     bounded queue + dynamic batching + the one predict thread (no HTTP)
    wire.py       strict, incremental RFC 9112 request parser (pure: bytes in, requests out)
    http.py       asyncio HTTP/1.1 connections (keep-alive, pipelining, back-pressure, limits, timeouts)
    routes.py     URL -> handler; the only place errors become HTTP statuses
    metrics.py    Prometheus text exposition, summed over worker processes
    docs.py       /openapi.json and the self-contained /docs page
    server.py     lifecycle: listen, setup, warm-up, ready, SIGTERM drain, worker processes
    bytecode.py   build time only: checked-hash .pyc of what the framework imports (serve images)
"""

from .config import ServeConfig, parse_args
from .server import serve

__all__ = ["ServeConfig", "parse_args", "serve"]
