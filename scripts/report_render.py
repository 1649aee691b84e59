"""Render results/report/cara_report.{html,pdf} and archive the render with what it was made from."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from cara_eval.report.archive import ARCHIVED_ESTIMANDS, ARCHIVED_PROVENANCE, archive_run, latest_archive
from cara_eval.report.data import contract_tables
from cara_eval.report.render import render_report

run_date = datetime.now(UTC).replace(microsecond=0)
inputs = snakemake.input
manifest = {
    "tables": contract_tables(inputs),
    "gates": [str(Path(p).resolve()) for p in inputs.gates],
    "figures": {"completeness": str(Path(inputs.completeness_figure).resolve()),
                "force_map": str(Path(inputs.force_map).resolve())},
    "provenance": str(Path(inputs.provenance).resolve()),
    "forces": snakemake.params.forces,
    "config": snakemake.params.config,
    "report": snakemake.params.report,
    "previous": latest_archive(snakemake.params.archive),
}
source = Path(inputs.sources[0]).parent
with tempfile.TemporaryDirectory(prefix="cara_report_") as build:
    renderer = render_report(
        source, "cara_report.qmd", manifest, Path(build) / "report", Path(snakemake.output.html),
        Path(snakemake.output.pdf), run_date, snakemake.params.report["renderer"],
    )
folder = archive_run(
    snakemake.params.archive,
    run_date,
    {
        "cara_report.html": snakemake.output.html,
        "cara_report.pdf": snakemake.output.pdf,
        ARCHIVED_PROVENANCE: inputs.provenance,
        ARCHIVED_ESTIMANDS: inputs.estimands,
    },
)
logging.info("report rendered with %s; archived in %s", renderer["name"], folder)
