"""`dockyard scan IMAGE|PATH|FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import app, engine, err, out

#: exit codes of `dockyard scan` (README "Scanning" and docs/security.md)
EXIT_CLEAN = 0
EXIT_USAGE = 1  # bad flags or a target that does not exist (every dockyard command)
EXIT_ENVIRONMENT = 2  # no engine, image archive unreadable (every dockyard command)
EXIT_FINDINGS = 4  # a finding at or above --fail-on
EXIT_NOT_CHECKED = 5  # --fail-on given and a requested check could not run (fail closed)

_EPILOG = ("Exit codes: 0 clean (or no --fail-on); 1 usage error; 2 environment problem; "
           "4 findings at or above --fail-on; 5 --fail-on given but a requested check could not run "
           "(the report lists it under NOT CHECKED).")


@app.command(epilog=_EPILOG)
def scan(
    target: Annotated[str, typer.Argument(help="NAME:N, NAME:latest, NAME@ALIAS (a version's serving image), an image "
                                               "reference/id, a project folder, a model file or folder of models, "
                                               "or a `docker save` archive")],
    fmt: Annotated[str, typer.Option("--format", help="table, json or sarif")] = "table",
    fail_on: Annotated[Optional[str], typer.Option("--fail-on", help="exit 4 at or above: low, medium, high, critical "
                                                                     "(exit 5 when a check could not run)")] = None,
    osv_db: Annotated[Optional[Path], typer.Option("--osv-db", help="offline OSV dump: a directory or zip")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="never call the OSV API")] = False,
    max_db_age_days: Annotated[int, typer.Option(help="an --osv-db older than this counts as not checked")] = 30,
    sbom: Annotated[Optional[str], typer.Option("--sbom", help="also write an SBOM: cyclonedx or spdx")] = None,
    sbom_out: Annotated[Optional[Path], typer.Option("--sbom-out", help="where to write the SBOM")] = None,
    vulns: Annotated[bool, typer.Option("--vulns", help="for a folder: also match dependencies against OSV")] = False,
) -> None:
    """Lint, audit, SBOM, vulnerabilities and model-file checks for an image, a project or model files."""
    from .. import scan as scanner
    from ..errors import UsageError

    if sbom and sbom not in ("cyclonedx", "spdx"):
        raise UsageError(f"unknown SBOM format {sbom!r}", "use --sbom cyclonedx or --sbom spdx")
    if not (Path(target).exists() or scanner.is_path_like(target)):
        from ..serving import image_for

        # NAME:N / NAME:latest / NAME@ALIAS name a version's serving image; others are image refs.
        target = image_for("scan", target, engine())[0]
    report = scanner.scan_target(target, osv_db=osv_db, offline=offline, max_db_age_days=max_db_age_days, vulns=vulns)
    if sbom:
        text = scanner.image_sbom(report, sbom)
        dest = sbom_out or Path(f"sbom.{sbom}.json")
        dest.write_text(text)
        err.print(f"wrote {sbom} SBOM to {dest}")
    out.print(report.render(fmt), markup=False)
    gate = report.gate(fail_on)
    if gate == "findings":
        raise typer.Exit(EXIT_FINDINGS)
    if gate == "not-checked":
        err.print(f"--fail-on {fail_on}: {len(report.not_checked)} requested check(s) could not run; "
                  "see NOT CHECKED above", markup=False)
        raise typer.Exit(EXIT_NOT_CHECKED)
