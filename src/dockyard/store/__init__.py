"""Model versions on disk: content-addressed, indexed, atomic, safe under concurrent writers.

``Store`` is the entry point; ``metrics`` holds the stdlib-only helpers that user code calls
inside a training container.
"""

from __future__ import annotations

from .diff import MetricChange, VersionDiff, diff_versions, render_diff
from .fingerprint import fingerprint_dir
from .metrics import log_metric, log_metrics, log_param, log_params, read_metrics, read_params
from .records import (
    Artifact,
    FailedRun,
    GitInfo,
    ImageInfo,
    ModelVersion,
    Provenance,
    Resources,
    RunRecord,
    describe_failure,
)
from .refs import Ref, parse_ref, validate_name
from .store import GcResult, ModelSummary, Problem, Store, default_root

__all__ = [
    "Artifact",
    "FailedRun",
    "GcResult",
    "GitInfo",
    "ImageInfo",
    "MetricChange",
    "ModelSummary",
    "ModelVersion",
    "Problem",
    "Provenance",
    "Ref",
    "Resources",
    "RunRecord",
    "Store",
    "VersionDiff",
    "default_root",
    "describe_failure",
    "diff_versions",
    "fingerprint_dir",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "parse_ref",
    "read_metrics",
    "read_params",
    "render_diff",
    "validate_name",
]
