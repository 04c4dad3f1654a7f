"""cog.yaml: what a Cog project declares, read as data (never imports project code)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dockyard.errors import DetectError

COG_FILE = "cog.yaml"


@dataclass(frozen=True)
class CogProject:
    python: str | None
    packages: tuple[str, ...]
    requirements_file: str | None
    system_packages: tuple[str, ...]
    gpu: bool
    cuda: str | None
    predict: str | None  # "predict.py:Predictor"
    train: str | None
    env: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1
    unmapped: tuple[str, ...] = ()  # what dockyard cannot carry over, each with why


def read_cog_yaml(project_dir: Path) -> CogProject | None:
    path = project_dir / COG_FILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DetectError(f"{path}: not valid YAML ({exc})", "fix cog.yaml") from None
    if not isinstance(data, dict):
        raise DetectError(f"{path}: expected a mapping at the top level", "fix cog.yaml")
    build = data.get("build") or {}
    if not isinstance(build, dict):
        raise DetectError(f"{path}: build must be a mapping", "fix cog.yaml")
    unmapped: list[str] = []
    if build.get("run"):
        unmapped.append(f"build.run ({len(build['run'])} command(s)): dockyard runs no arbitrary build "
                        "steps; add system packages or Python packages instead, or eject the Dockerfile")
    for key, why in (("cudnn", "the CUDA base image decides cuDNN"),
                     ("pre_install", "dockyard installs from requirements only"),
                     ("python_extra_index_urls", "put --extra-index-url lines in the requirements file")):
        if build.get(key):
            unmapped.append(f"build.{key}: {why}")
    if data.get("image"):
        unmapped.append(f"image ({data['image']}): push with `dockyard push` to your own registry instead")
    if data.get("train"):
        unmapped.append(f"train ({data['train']}): Cog's training interface (a function of Input()s) is not "
                        "dockyard's; set train.command to a script that writes the weights to $DOCKYARD_OUTPUTS")
    concurrency = data.get("concurrency") or {}
    max_concurrency = int(concurrency.get("max", 1)) if isinstance(concurrency, dict) else 1
    if max_concurrency > 1:
        unmapped.append(f"concurrency.max {max_concurrency}: concurrent (async) predictions are not supported; "
                        "dockyard serve refuses this project until it is removed")
    env = _environment(data.get("environment"))
    python = build.get("python_version")
    return CogProject(
        python=_minor(str(python)) if python is not None else None,
        packages=tuple(str(p) for p in build.get("python_packages") or ()),
        requirements_file=str(build["python_requirements"]) if build.get("python_requirements") else None,
        system_packages=tuple(str(p) for p in build.get("system_packages") or ()),
        gpu=bool(build.get("gpu")),
        cuda=str(build["cuda"]) if build.get("cuda") else None,
        predict=str(data["predict"]) if data.get("predict") else None,
        train=str(data["train"]) if data.get("train") else None,
        env=env,
        concurrency=max_concurrency,
        unmapped=tuple(unmapped),
    )


def _minor(version: str) -> str:
    match = re.match(r"(3\.\d+)", version)
    return match.group(1) if match else version


def _environment(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    for item in value or ():
        key, sep, val = str(item).partition("=")
        if sep:
            out[key.strip()] = val
    return out
