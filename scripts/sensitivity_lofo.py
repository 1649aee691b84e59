"""Rule sensitivity_lofo: refit without one force and score its cells as a new force's (one pooling, one dataset)."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

from cara_eval.common.compile_cache import start_fitting_job  # noqa: E402

start_fitting_job(snakemake.params.model["compile_dir"], snakemake.threads)

import pandas as pd  # noqa: E402

from cara_eval.model.effectiveness import derive_seed  # noqa: E402
from cara_eval.model.gate import gate_table  # noqa: E402
from cara_eval.sensitivity.analyses import VARIANT_OF_POOLING, lofo_score, variant_settings  # noqa: E402

pooling, dataset, force = snakemake.wildcards.pooling, snakemake.wildcards.dataset, snakemake.wildcards.force
variant = VARIANT_OF_POOLING[pooling]
settings, _, _ = variant_settings(snakemake.params.model, snakemake.params.sensitivity, variant)
seed = derive_seed(snakemake.params.seed, "sensitivity_lofo", pooling, dataset, force)
cases = pd.read_parquet(snakemake.input.cases)

row, idata = lofo_score(cases, force, settings, pooling, seed, cores=snakemake.threads)
gate = gate_table(idata, f"{dataset}_without_{force}", settings["gate"])
gate.to_csv(snakemake.output.gate, index=False)
pd.DataFrame([{**row, "dataset": dataset, "gate_passed": bool(gate["passed"].all())}]).to_csv(
    snakemake.output.score, index=False)
