"""dockyard: containerise machine-learning projects end to end."""

__version__ = "0.1.0"
