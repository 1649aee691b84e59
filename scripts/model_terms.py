"""Rule model_terms: which model terms the data identify, with the reason for each one left out."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import logging  # noqa: E402

import pandas as pd  # noqa: E402

from cara_eval.model.cells import CellSpec  # noqa: E402
from cara_eval.model.terms import identify_terms  # noqa: E402

cases = pd.read_parquet(snakemake.input.cases)
terms = identify_terms(cases, CellSpec.from_config(snakemake.params.cells))
terms.table.to_csv(snakemake.output.terms, index=False)
for row in terms.dropped().itertuples():
    logging.info("left out: %s (%s)", row.term, row.reason)
