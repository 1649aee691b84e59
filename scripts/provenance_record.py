"""Write results/provenance/run.json: commit, config, package versions, SHA-256 of every input file."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging

from cara_eval.provenance.record import record_run, write_record

inputs = {kind: list(snakemake.input[kind]) for kind in ("raw", "mapping", "config")}
record = record_run(inputs, snakemake.params.config, snakemake.params.repo)
write_record(record, snakemake.output[0])
logging.info("provenance: %d input files, commit %s", len(record["inputs"]), record["git"]["commit"])
