"""Data files shipped with dockyard: dockyard.schema.json, the JSON Schema of dockyard.yaml.

Generated from the pydantic model (``dockyard.config.json_schema``); regenerate with
``python -m dockyard.schema`` (tests/unit/test_config_schema.py fails while it is stale).
"""
