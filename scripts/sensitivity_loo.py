"""Rule sensitivity_loo: PSIS-LOO (over cells) of no, partial and complete pooling within each dataset."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import pandas as pd  # noqa: E402

from cara_eval.sensitivity.analyses import loo_table  # noqa: E402

datasets = snakemake.params.datasets
fits = iter(zip(snakemake.input.loo, snakemake.input.gates))
by_dataset = {dataset: {} for dataset in datasets}
passed = {}
for variant in snakemake.params.variants:
    for dataset in datasets:
        loo_path, gate_path = next(fits)
        by_dataset[dataset][variant] = pd.read_pickle(loo_path)
        passed[(variant, dataset)] = bool(pd.read_csv(gate_path)["passed"].all())
table = pd.concat([loo_table(elpds, dataset) for dataset, elpds in by_dataset.items()], ignore_index=True)
table["gate_passed"] = [passed[(v, d)] for v, d in zip(table["variant"], table["dataset"])]
table.to_csv(snakemake.output.table, index=False)
