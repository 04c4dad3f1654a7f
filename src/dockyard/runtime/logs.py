"""One JSON object per line on stderr, one line per lifecycle event."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def log(event: str, level: str = "info", **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "level": level, "event": event, "pid": os.getpid()}
    record.update(fields)
    try:
        sys.stderr.write(json.dumps(record, default=str) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: logging must never take the server down
        pass
