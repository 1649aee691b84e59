"""Rule model_priors: the configured priors and what they imply for 12-month risk and the CARA effect."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import use_compile_dir  # noqa: E402

use_compile_dir(snakemake.params.model["compile_dir"])

import pandas as pd  # noqa: E402

from cara_eval.model.cells import CellSpec, build_cells  # noqa: E402
from cara_eval.model.checks import plot_prior_predictive, prior_predictive, priors_table  # noqa: E402
from cara_eval.model.effectiveness import build_model, derive_seed  # noqa: E402

settings = snakemake.params.model
priors_table(settings["priors"]).to_csv(snakemake.output.priors, index=False)
cells = build_cells(pd.read_parquet(snakemake.input.cases), CellSpec.from_config(settings["cells"]))
model = build_model(cells, settings["priors"], settings["centred"])
seed = derive_seed(snakemake.params.seed, snakemake.wildcards.outcome, "prior")
table, prior = prior_predictive(model, settings["prior_predictive_draws"], seed)
table.to_csv(snakemake.output.prior_predictive, index=False)
plot_prior_predictive(prior, snakemake.output.figure)
