"""requirements.txt parsing: includes, options, hashes, and errors that name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import DetectError
from dockyard.detect.requirements import (
    RequirementsResult,
    find_requirements_files,
    normalise_requirement,
    parse_requirement_lines,
    parse_requirements_file,
)


def parse(tmp_path: Path, text: str, others: dict[str, str] | None = None) -> RequirementsResult:
    """Write requirements.txt (and any other files) into a project and parse it."""
    for name, body in (others or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    (tmp_path / "requirements.txt").write_text(text)
    return parse_requirements_file(tmp_path / "requirements.txt", tmp_path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Scikit_Learn==1.4.2", "scikit-learn==1.4.2"),
        ("torch [CPU] >= 2.3", "torch[CPU]>=2.3"),
        ("numpy>=1.26,<2", "numpy<2,>=1.26"),
        ('pandas; python_version < "3.12"', 'pandas; python_version < "3.12"'),
        ("My.Package @ https://example.com/p.whl", "my-package @ https://example.com/p.whl"),
    ],
)
def test_requirement_names_are_normalised(line: str, expected: str) -> None:
    assert normalise_requirement(line) == expected


def test_includes_are_followed_relative_to_the_including_file(tmp_path: Path) -> None:
    result = parse(
        tmp_path, "-r reqs/base.txt\nflask\n", {"reqs/base.txt": "-r more.txt\nnumpy\n", "reqs/more.txt": "scipy\n"}
    )
    assert result.requirements == ("scipy", "numpy", "flask")
    assert result.files == ("requirements.txt", "reqs/base.txt", "reqs/more.txt")


def test_include_cycles_read_each_file_once(tmp_path: Path) -> None:
    result = parse(tmp_path, "-r other.txt\nnumpy\n", {"other.txt": "--requirement=requirements.txt\nscipy\n"})
    assert result.requirements == ("scipy", "numpy")


def test_missing_include_names_the_line_and_the_file(tmp_path: Path) -> None:
    with pytest.raises(DetectError) as err:
        parse(tmp_path, "numpy\n-r missing.txt\n")
    assert err.value.problem.startswith("requirements.txt:2: -r missing.txt: file not found")


def test_index_options_are_kept_apart_from_requirements(tmp_path: Path) -> None:
    text = (
        "--index-url=https://pypi.org/simple\n"
        "-i https://mirror.example/simple\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\n"
        "-f ./wheels\n"
        "--trusted-host mirror.example\n"
        "--pre\n"
        "torch==2.3.1+cpu\n"
    )
    result = parse(tmp_path, text)
    assert result.requirements == ("torch==2.3.1+cpu",)
    assert result.options == (
        "--index-url https://pypi.org/simple",
        "--index-url https://mirror.example/simple",
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "--find-links ./wheels",
        "--trusted-host mirror.example",
        "--pre",
    )


def test_hashes_mark_the_file_hash_locked_and_are_not_part_of_the_requirement(tmp_path: Path) -> None:
    text = "numpy==2.0.0 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n# via scipy\nscipy==1.13.0 --hash=sha256:cccc\n"
    result = parse(tmp_path, text)
    assert result.requirements == ("numpy==2.0.0", "scipy==1.13.0")
    assert result.hash_locked is True


def test_plain_file_is_not_hash_locked(tmp_path: Path) -> None:
    assert parse(tmp_path, "numpy\n").hash_locked is False


def test_comments_blank_lines_and_editable_project_are_skipped(tmp_path: Path) -> None:
    result = parse(tmp_path, "# header\n\n-e .\n.\nnumpy  # inline comment\n")
    assert result.requirements == ("numpy",)
    assert [r.what for r in result.reasons] == ["skipped '-e .'", "skipped '.'"]


def test_local_wheel_path_is_left_out_with_a_warning(tmp_path: Path) -> None:
    result = parse(tmp_path, "./wheels/mylib-1.0-py3-none-any.whl\n")
    assert result.requirements == ()
    assert "requirements.txt:1: local path requirement" in result.warnings[0]


def test_editable_vcs_requirement_is_a_warning(tmp_path: Path) -> None:
    result = parse(tmp_path, "-e git+https://github.com/org/lib.git#egg=lib\n")
    assert result.requirements == ()
    assert "requirements.txt:1" in result.warnings[0]


def test_bare_wheel_url_becomes_a_named_direct_reference(tmp_path: Path) -> None:
    url = "https://download.pytorch.org/whl/cpu/torch-2.3.1%2Bcpu-cp311-cp311-linux_x86_64.whl"
    result = parse(tmp_path, url + "\n")
    assert result.requirements == (f"torch @ {url}",)


def test_url_without_a_package_name_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"requirements.txt:1: cannot tell the package name"):
        parse(tmp_path, "https://example.com/download/archive\n")


def test_constraint_files_are_passed_on_as_options(tmp_path: Path) -> None:
    result = parse(tmp_path, "-c constraints.txt\nnumpy\n", {"constraints.txt": "numpy==2.0.0\n"})
    assert result.options == ("--constraint constraints.txt",)


@pytest.mark.parametrize(
    ("text", "where", "bad"),
    [
        ("numpy\nscikit-learn=1.4\n", "requirements.txt:2", "'scikit-learn=1.4'"),
        ("numpy\n\n\ntorch>>2\n", "requirements.txt:4", "'torch>>2'"),
        ("pandas[\n", "requirements.txt:1", "'pandas['"),
    ],
)
def test_invalid_requirement_line_names_file_line_and_text(tmp_path: Path, text: str, where: str, bad: str) -> None:
    with pytest.raises(DetectError) as err:
        parse(tmp_path, text)
    assert err.value.problem.startswith(f"{where}: invalid requirement {bad}")
    assert err.value.fix


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"^sub/base.txt:1: invalid requirement"):
        parse(tmp_path, "-r sub/base.txt\n", {"sub/base.txt": "bad==\n"})


def test_unknown_pip_option_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"requirements.txt:1: unsupported pip option '--frobnicate'"):
        parse(tmp_path, "--frobnicate yes\n")


def test_option_without_its_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"requirements.txt:1: --extra-index-url needs a value"):
        parse(tmp_path, "--extra-index-url\n")


def test_non_utf8_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"numpy\n\xff\xfe\n")
    with pytest.raises(DetectError, match="requirements.txt is not valid UTF-8"):
        parse_requirements_file(tmp_path / "requirements.txt", tmp_path)


def test_lines_from_another_file_keep_their_own_line_numbers(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"^environment.yml:12: invalid requirement"):
        parse_requirement_lines(
            [(11, "numpy"), (12, "not valid!")], origin="environment.yml", base_dir=tmp_path, project_dir=tmp_path
        )


def test_requirements_files_are_ordered_main_before_dev(tmp_path: Path) -> None:
    for name in (
        "requirements-dev.txt",
        "requirements_test.txt",
        "requirements-gpu.txt",
        "requirements-prod.txt",
        "requirements.txt",
    ):
        (tmp_path / name).write_text("numpy\n")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "docs.txt").write_text("sphinx\n")
    names = [p.relative_to(tmp_path).as_posix() for p in find_requirements_files(tmp_path)]
    assert names == [
        "requirements.txt",
        "requirements-prod.txt",
        "requirements-gpu.txt",
        "requirements-dev.txt",
        "requirements/docs.txt",
        "requirements_test.txt",
    ]
