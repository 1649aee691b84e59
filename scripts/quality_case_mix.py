"""Rule quality_case_mix: case mix by force and arm with standardised mean differences, before imputation."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging

import pandas as pd

from cara_eval.quality import figures as quality_figures
from cara_eval.quality import profile as quality

columns = ["force", "arm", *quality.NUMERIC_COVARIATES, *quality.CATEGORICAL_COVARIATES]
cases = pd.read_parquet(snakemake.input.cases, columns=columns)
logging.info("case mix of %d cases of %d forces", len(cases), cases["force"].nunique())

case_mix = quality.case_mix(cases)
case_mix.to_csv(snakemake.output.case_mix, index=False)
quality_figures.plot_case_mix(case_mix, snakemake.params.smd_threshold, snakemake.output.case_mix_figure)
