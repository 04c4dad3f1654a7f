"""`dockyard diff` internals without Docker: packages read from layer tars (whiteouts applied), and
build steps paired between two histories. (Lives beside the registry tests: the diff compares
versions that move through registries.)"""

from __future__ import annotations

import io
import tarfile

from dockyard.imagediff import (
    Change,
    LayerChange,
    dict_changes,
    layer_changes,
    read_packages,
)

SP = "opt/venv/lib/python3.11/site-packages"


def layer(files: dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def meta(name: str, version: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nlong description\n"


def test_packages_come_from_dist_info_metadata_across_layers() -> None:
    base = layer({f"{SP}/joblib-1.4.2.dist-info/METADATA": meta("joblib", "1.4.2"),
                  f"{SP}/joblib/__init__.py": "", f"{SP}/Six-1.16.0.dist-info/METADATA": meta("Six", "1.16.0")})
    assert read_packages([base]) == {"joblib": "1.4.2", "six": "1.16.0"}


def test_a_whiteout_in_a_later_layer_removes_the_package() -> None:
    base = layer({f"{SP}/joblib-1.4.2.dist-info/METADATA": meta("joblib", "1.4.2"),
                  f"{SP}/six-1.16.0.dist-info/METADATA": meta("six", "1.16.0")})
    upgrade = layer({f"{SP}/.wh.joblib-1.4.2.dist-info": "",
                     f"{SP}/joblib-1.5.1.dist-info/METADATA": meta("joblib", "1.5.1")})
    assert read_packages([base, upgrade]) == {"joblib": "1.5.1", "six": "1.16.0"}


def test_an_opaque_directory_hides_everything_below_it() -> None:
    base = layer({f"{SP}/six-1.16.0.dist-info/METADATA": meta("six", "1.16.0")})
    fresh = layer({f"{SP}/.wh..wh..opq": "", f"{SP}/numpy-2.2.6.dist-info/METADATA": meta("numpy", "2.2.6")})
    assert read_packages([base, fresh]) == {"numpy": "2.2.6"}


def test_the_venv_wins_over_the_system_python() -> None:
    both = layer({"usr/lib/python3/dist-packages/six-1.15.0.dist-info/METADATA": meta("six", "1.15.0"),
                  f"{SP}/six-1.16.0.dist-info/METADATA": meta("six", "1.16.0")})
    assert read_packages([both]) == {"six": "1.16.0"}


def test_steps_pair_by_instruction_and_report_only_changes() -> None:
    before = [("FROM base", 100), ("RUN apt-get install x", 50), ("COPY /opt/venv /opt/venv", 900), ("COPY . /app", 10)]
    after = [("FROM base", 100), ("COPY /opt/venv /opt/venv", 950), ("COPY . /app", 10), ("COPY weights /w", 70)]
    assert layer_changes(before, after) == (
        LayerChange("RUN apt-get install x", 50, None),
        LayerChange("COPY /opt/venv /opt/venv", 900, 950),
        LayerChange("COPY weights /w", None, 70),
    )


def test_dict_changes_name_added_removed_and_changed_keys() -> None:
    assert dict_changes({"a": "1", "b": "2"}, {"b": "3", "c": "4"}) == (
        Change("a", "1", None), Change("b", "2", "3"), Change("c", None, "4"))
