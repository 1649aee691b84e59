"""Stage: model. Primary effectiveness model per outcome and imputed dataset, pooled across imputations."""


rule model_priors:
    input:
        cases="results/impute/imp1.parquet",
    output:
        priors="results/model/{outcome}/priors.csv",
        prior_predictive="results/model/{outcome}/prior_predictive.csv",
        figure=report(
            "results/model/{outcome}/prior_predictive.png",
            caption="Implied 12-month risk and CARA effect under the priors alone.",
            category="Model",
        ),
    log:
        "logs/model_priors/{outcome}.log",
    benchmark:
        "benchmarks/model_priors/{outcome}.tsv"
    conda:
        "../envs/model.yaml"
    params:
        model=config["model"],
        seed=config["seed"],
    script:
        "../scripts/model_priors.py"


rule model_terms:
    input:
        cases="results/impute/imp1.parquet",
    output:
        terms="results/model/{outcome}/terms.csv",
    log:
        "logs/model_terms/{outcome}.log",
    benchmark:
        "benchmarks/model_terms/{outcome}.tsv"
    conda:
        "../envs/model.yaml"
    params:
        cells=config["model"]["cells"],
    script:
        "../scripts/model_terms.py"


rule model_fit:
    input:
        cases="results/impute/{dataset}.parquet",
    output:
        idata="results/model/{outcome}/{dataset}/idata.nc",
        gate="results/model/{outcome}/{dataset}/gate.csv",
        ppc="results/model/{outcome}/{dataset}/ppc.csv",
        ppc_figure="results/model/{outcome}/{dataset}/ppc.png",
    log:
        "logs/model_fit/{outcome}/{dataset}.log",
    benchmark:
        "benchmarks/model_fit/{outcome}/{dataset}.tsv"
    # Fits before the short jobs that need none: those then fill the other core while the last fits run
    # (the greedy scheduler starts the highest priority first).
    priority: 1
    conda:
        "../envs/model.yaml"
    threads: 2
    params:
        model=config["model"],
        seed=config["seed"],
        imputations=len(get_imputation_datasets()),
    script:
        "../scripts/model_fit.py"


rule model_fit_no_pooling:
    input:
        cases=f"results/impute/{get_no_pooling_dataset()}.parquet",
    output:
        idata="results/model/{outcome}/idata_no_pooling.nc",
    log:
        "logs/model_fit_no_pooling/{outcome}.log",
    benchmark:
        "benchmarks/model_fit_no_pooling/{outcome}.tsv"
    priority: 1
    conda:
        "../envs/model.yaml"
    threads: 2
    params:
        model=config["model"],
        seed=config["seed"],
        dataset=get_no_pooling_dataset(),
    script:
        "../scripts/model_fit_no_pooling.py"


rule model_pool:
    input:
        idata=get_model_fit_files("idata.nc"),
        idata_no_pooling="results/model/{outcome}/idata_no_pooling.nc",
        gates=get_model_fit_files("gate.csv"),
        ppc=get_model_fit_files("ppc.csv"),
    output:
        estimands="results/model/{outcome}/pooled/estimands.csv",
        forest="results/model/{outcome}/pooled/forest.csv",
        gate_summary="results/model/{outcome}/pooled/gate_summary.csv",
        pooled_gate="results/model/{outcome}/pooled/gate.csv",
        definition="results/model/{outcome}/pooled/estimand.json",
        effect_draws="results/model/{outcome}/pooled/effect_draws.parquet",
    log:
        "logs/model_pool/{outcome}.log",
    benchmark:
        "benchmarks/model_pool/{outcome}.tsv"
    conda:
        "../envs/model.yaml"
    params:
        model=config["model"],
    script:
        "../scripts/model_pool.py"


rule model_truth_check:
    input:
        estimands="results/model/{outcome}/pooled/estimands.csv",
        cases="results/ingest/cases.parquet",
        truth=config["synthetic"]["truth_file"],
    output:
        truth_check="results/model/{outcome}/truth_check.csv",
    log:
        "logs/model_truth_check/{outcome}.log",
    benchmark:
        "benchmarks/model_truth_check/{outcome}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/model_truth_check.py"
