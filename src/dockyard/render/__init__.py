"""Plan -> Dockerfile text and .dockerignore (pure, golden-tested)."""

from .dockerfile import render_dockerfile
from .dockerignore import render_dockerignore

__all__ = ["render_dockerfile", "render_dockerignore"]
