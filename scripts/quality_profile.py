"""Rule quality_profile: completeness, exclusion reasons, follow-up, cohort sizes and process measures."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging

import pandas as pd

from cara_eval.common.schema import CASE_FIELDS
from cara_eval.quality import figures as quality_figures
from cara_eval.quality import profile as quality

# The pseudonymised case and offender ids are never missing and never profiled: leave them on disk.
columns = [field for field in CASE_FIELDS if field not in ("case_id", "offender_pid")]
cases = pd.read_parquet(snakemake.input.cases, columns=columns)
accounting = pd.read_csv(snakemake.input.accounting)
designs = quality.read_force_designs(snakemake.input.mappings)
full_followup_days = snakemake.params.full_followup_days
logging.info("profiling %d cases of %d forces (%d mapping files)", len(cases), cases["force"].nunique(), len(designs))

completeness = quality.completeness(cases, designs)
completeness.to_csv(snakemake.output.completeness, index=False)
quality_figures.plot_completeness(completeness, snakemake.output.completeness_figure)

reasons = quality.reasons(accounting)
reasons.to_csv(snakemake.output.reasons, index=False)
quality_figures.plot_reasons(reasons, accounting, snakemake.output.reasons_figure)

quality.followup_coverage(cases, full_followup_days).to_csv(snakemake.output.followup, index=False)
quality_figures.plot_followup(cases, full_followup_days, snakemake.output.followup_figure)

sizes = quality.cohort_sizes(cases)
sizes.to_csv(snakemake.output.cohort_sizes, index=False)
quality_figures.plot_cohort_sizes(sizes, designs, snakemake.output.cohort_sizes_figure)

quality.process_measures(cases, designs).to_csv(snakemake.output.process_measures, index=False)
