"""Rule ingest_combine: every force's clean cases and row accounting in one table each."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.ingest.force import combine_forces

cases, accounting = combine_forces(snakemake.input.cases, snakemake.input.accounting)
cases.to_parquet(snakemake.output.cases, index=False)
accounting.to_csv(snakemake.output.accounting, index=False)
