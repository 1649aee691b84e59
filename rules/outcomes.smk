"""Stage: secondary outcomes. Reoffence counts and harm per imputed dataset, pooled across imputations."""


rule outcome_fit:
    input:
        cases="results/impute/{dataset}.parquet",
    output:
        idata="results/outcomes/{secondary_outcome}/{dataset}/idata.nc",
        gate="results/outcomes/{secondary_outcome}/{dataset}/gate.csv",
        observed="results/outcomes/{secondary_outcome}/{dataset}/observed.csv",
    log:
        "logs/outcome_fit/{secondary_outcome}/{dataset}.log",
    benchmark:
        "benchmarks/outcome_fit/{secondary_outcome}/{dataset}.tsv"
    priority: 1
    conda:
        "../envs/model.yaml"
    threads: 2
    params:
        model=config["model"],
        outcomes=config["secondary_outcomes"],
        seed=config["seed"],
    script:
        "../scripts/outcome_fit.py"


rule outcome_pool:
    input:
        idata=get_outcome_fit_files("idata.nc"),
        gates=get_outcome_fit_files("gate.csv"),
        observed=get_outcome_fit_files("observed.csv"),
    output:
        estimands="results/outcomes/{secondary_outcome}/pooled/estimands.csv",
        gate_summary="results/outcomes/{secondary_outcome}/pooled/gate_summary.csv",
        definition="results/outcomes/{secondary_outcome}/pooled/estimand.json",
    log:
        "logs/outcome_pool/{secondary_outcome}.log",
    benchmark:
        "benchmarks/outcome_pool/{secondary_outcome}.tsv"
    conda:
        "../envs/model.yaml"
    params:
        model=config["model"],
        estimand=get_outcome_estimand,
    script:
        "../scripts/outcome_pool.py"


rule outcome_truth_check:
    input:
        estimands="results/outcomes/{secondary_outcome}/pooled/estimands.csv",
        truth=config["synthetic"]["truth_file"],
    output:
        truth_check="results/outcomes/{secondary_outcome}/truth_check.csv",
    log:
        "logs/outcome_truth_check/{secondary_outcome}.log",
    benchmark:
        "benchmarks/outcome_truth_check/{secondary_outcome}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/outcome_truth_check.py"
