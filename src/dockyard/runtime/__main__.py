"""``python -m dockyard_runtime`` (in images) / ``python -m dockyard.runtime`` (on a host)."""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
