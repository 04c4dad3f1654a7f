"""`python -m dockyard.schema`: rewrite dockyard.schema.json from the pydantic model."""

from __future__ import annotations

import json

from dockyard.config import json_schema, shipped_schema

if __name__ == "__main__":
    path = shipped_schema()
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")
