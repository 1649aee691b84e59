"""Rule impute_complete_case: the cases with every analysis covariate observed."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.impute.stage import complete_case_dataset  # noqa: E402

cases = pd.read_parquet(snakemake.input.cases)
complete_case_dataset(cases, snakemake.params.imputation).to_parquet(snakemake.output[0], index=False)
