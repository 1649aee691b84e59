"""Rules impute_dataset and impute_mnar: one imputed (optionally MNAR-shifted) copy of the cases."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.impute.stage import imputed_dataset  # noqa: E402

cases = pd.read_parquet(snakemake.input.cases)
structural = pd.read_csv(snakemake.input.structural)
result = imputed_dataset(
    cases,
    structural,
    snakemake.params.imputation,
    seed=snakemake.params.seed,
    k=int(snakemake.wildcards.k),
    delta=snakemake.params.delta,
)
result.data.to_parquet(snakemake.output.data, index=False)
result.trace.to_csv(snakemake.output.trace, index=False)
