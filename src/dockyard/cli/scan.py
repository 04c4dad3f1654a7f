"""`dockyard scan IMAGE|PATH`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import app, engine, err, out


@app.command()
def scan(
    target: Annotated[str, typer.Argument(help="NAME:N, NAME:latest, NAME@ALIAS (a version's serving image), an image reference/id, or a project folder")],
    fmt: Annotated[str, typer.Option("--format", help="table, json or sarif")] = "table",
    fail_on: Annotated[Optional[str], typer.Option("--fail-on", help="exit 1 at or above: low, medium, high, critical")] = None,
    osv_db: Annotated[Optional[Path], typer.Option("--osv-db", help="offline OSV dump: a directory or zip")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="never call the OSV API")] = False,
    max_db_age_days: Annotated[int, typer.Option(help="warn when the offline DB is older")] = 30,
    sbom: Annotated[Optional[str], typer.Option("--sbom", help="also write an SBOM: cyclonedx or spdx")] = None,
    sbom_out: Annotated[Optional[Path], typer.Option("--sbom-out", help="where to write the SBOM")] = None,
    vulns: Annotated[bool, typer.Option("--vulns", help="for a folder: also match dependencies against OSV")] = False,
) -> None:
    """Lint, audit, SBOM, vulnerabilities and model-file checks for an image or a project."""
    from .. import scan as scanner
    from ..errors import UsageError

    if Path(target).is_dir():
        report = scanner.scan_path(Path(target), osv_db=osv_db, offline=offline, max_db_age_days=max_db_age_days, vulns=vulns)
    else:
        from ..serving import image_for

        # NAME:N / NAME:latest / NAME@ALIAS name a version's serving image; others are image refs.
        image = target if Path(target).exists() else image_for("scan", target, engine())[0]
        report = scanner.scan_image(image, osv_db=osv_db, offline=offline, max_db_age_days=max_db_age_days)
        if sbom:
            if sbom not in ("cyclonedx", "spdx"):
                raise UsageError(f"unknown SBOM format {sbom!r}", "use --sbom cyclonedx or --sbom spdx")
            text = scanner.image_sbom(report, sbom)
            dest = sbom_out or Path(f"sbom.{sbom}.json")
            dest.write_text(text)
            err.print(f"wrote {sbom} SBOM to {dest}")
    out.print(report.render(fmt), markup=False)
    if report.fails(fail_on):
        raise typer.Exit(1)
