"""Rule spec_build: the data specification (CSV for machines, Markdown for force analysts)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from pathlib import Path

from cara_eval.ingest.mapping import load_mapping
from cara_eval.ingest.spec import build_data_specification, specification_markdown

spec = build_data_specification([load_mapping(path) for path in snakemake.input.mappings])
spec.to_csv(snakemake.output.csv, index=False)
Path(snakemake.output.md).write_text(specification_markdown(spec), encoding="utf-8")
