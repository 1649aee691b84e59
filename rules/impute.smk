"""Stage: impute. Missingness diagnostics, m imputed datasets (one job each), MNAR-shifted datasets, complete cases."""


rule impute_diagnose:
    input:
        cases="results/ingest/cases.parquet",
        mappings=get_mappings(),
    output:
        missingness="results/impute/diagnostics/missingness.csv",
        patterns="results/impute/diagnostics/missingness_patterns.csv",
        models="results/impute/diagnostics/missingness_models.csv",
        structural="results/impute/diagnostics/structural_pairs.csv",
        warnings="results/impute/diagnostics/warnings.csv",
        missingness_png=report(
            "results/impute/diagnostics/missingness.png", category="Missing data"
        ),
        patterns_png="results/impute/diagnostics/missingness_patterns.png",
    log:
        "logs/impute_diagnose/all.log",
    benchmark:
        "benchmarks/impute_diagnose/all.tsv"
    conda:
        "../envs/impute.yaml"
    params:
        imputation=config["imputation"],
    script:
        "../scripts/impute_diagnose.py"


rule impute_dataset:
    input:
        cases="results/ingest/cases.parquet",
        structural="results/impute/diagnostics/structural_pairs.csv",
    output:
        data="results/impute/imp{k}.parquet",
        trace="results/impute/diagnostics/trace_imp{k}.csv",
    log:
        "logs/impute_dataset/{k}.log",
    benchmark:
        "benchmarks/impute_dataset/{k}.tsv"
    wildcard_constraints:
        k=r"\d+",
    conda:
        "../envs/impute.yaml"
    params:
        imputation=config["imputation"],
        seed=config["seed"],
        delta=None,
    script:
        "../scripts/impute_dataset.py"


rule impute_mnar:
    input:
        cases="results/ingest/cases.parquet",
        structural="results/impute/diagnostics/structural_pairs.csv",
    output:
        data="results/impute/mnar{delta}_imp{k}.parquet",
        trace="results/impute/diagnostics/trace_mnar{delta}_imp{k}.csv",
    log:
        "logs/impute_mnar/{delta}_{k}.log",
    benchmark:
        "benchmarks/impute_mnar/{delta}_{k}.tsv"
    wildcard_constraints:
        k=r"\d+",
        delta=r"-?\d+(\.\d+)?",
    conda:
        "../envs/impute.yaml"
    params:
        imputation=config["imputation"],
        seed=config["seed"],
        delta=get_mnar_delta,
    script:
        "../scripts/impute_dataset.py"


rule impute_complete_case:
    input:
        cases="results/ingest/cases.parquet",
    output:
        "results/impute/cc.parquet",
    log:
        "logs/impute_complete_case/all.log",
    benchmark:
        "benchmarks/impute_complete_case/all.tsv"
    conda:
        "../envs/impute.yaml"
    params:
        imputation=config["imputation"],
    script:
        "../scripts/impute_complete_case.py"


rule impute_plot:
    input:
        cases="results/ingest/cases.parquet",
        traces=get_impute_traces(),
        datasets=expand(
            "results/impute/{dataset}.parquet", dataset=get_imputation_datasets()
        ),
    output:
        convergence=report(
            "results/impute/diagnostics/convergence.png", category="Missing data"
        ),
        observed_vs_imputed=report(
            "results/impute/diagnostics/observed_vs_imputed.png",
            category="Missing data",
        ),
    log:
        "logs/impute_plot/all.log",
    benchmark:
        "benchmarks/impute_plot/all.tsv"
    conda:
        "../envs/impute.yaml"
    params:
        fields=config["imputation"]["fields"],
    script:
        "../scripts/impute_plot.py"
