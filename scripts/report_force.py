"""Render one force's feedback report, results/report/forces/{force}.{html,pdf}, with the national report's renderer."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from cara_eval.report.data import ReportData, contract_tables
from cara_eval.report.render import render_report

force = snakemake.wildcards.force
inputs = snakemake.input
manifest = {
    "tables": contract_tables(inputs),
    "force": force,
    "force_tiles": str(Path(inputs.tiles).resolve()),
    "forces": snakemake.params.forces,
    "config": snakemake.params.config,
    "report": snakemake.params.report,
}
with tempfile.TemporaryDirectory(prefix=f"cara_force_{force}_") as build:
    renderer = render_report(
        Path(inputs.sources[0]).parent, "force_report.qmd", manifest, Path(build) / "report",
        Path(snakemake.output.html), Path(snakemake.output.pdf), datetime.now(UTC).replace(microsecond=0),
        snakemake.params.report["renderer"], shared=tuple(Path(p) for p in inputs.styles),
        front_matter={"title": f"Project CARA: feedback for {ReportData(manifest).force_name(force)}"},
    )
logging.info("force report for %s rendered with %s", force, renderer["name"])
