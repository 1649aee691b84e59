"""Stage: sensitivity. The primary model refitted with one thing changed (pooling, tau prior, missing-data
strategy, time adjustment), one job per fit; tables per analysis and one summary. config `sensitivity`.
"""


rule sensitivity_fit:
    input:
        cases="results/impute/{dataset}.parquet",
    output:
        idata="results/sensitivity/fits/{variant}/{dataset}/idata.nc",
        gate="results/sensitivity/fits/{variant}/{dataset}/gate.csv",
    log:
        "logs/sensitivity_fit/{variant}/{dataset}.log",
    benchmark:
        "benchmarks/sensitivity_fit/{variant}/{dataset}.tsv"
    wildcard_constraints:
        variant=r"[A-Za-z0-9_.]+",
    priority: 1
    conda:
        "../envs/model.yaml"
    threads: 2
    params:
        variant=get_variant_settings,
        seed=config["seed"],
    script:
        "../scripts/sensitivity_fit.py"


# PSIS-LOO of a sensitivity fit: a job of its own, as only the pooling comparison (sensitivity_loo) reads it.
rule sensitivity_fit_loo:
    input:
        cases="results/impute/{dataset}.parquet",
        idata="results/sensitivity/fits/{variant}/{dataset}/idata.nc",
    output:
        loo="results/sensitivity/fits/{variant}/{dataset}/loo.pkl",
    log:
        "logs/sensitivity_fit_loo/{variant}/{dataset}.log",
    benchmark:
        "benchmarks/sensitivity_fit_loo/{variant}/{dataset}.tsv"
    wildcard_constraints:
        variant=r"[A-Za-z0-9_.]+",
    conda:
        "../envs/model.yaml"
    params:
        variant=get_variant_settings,
    script:
        "../scripts/sensitivity_fit_loo.py"


# The primary variant on an imputed dataset is model_fit's own fit (get_sensitivity_fit_file): only its gate,
# judged alone as every sensitivity fit is, and its PSIS-LOO are computed here.
rule sensitivity_score_model_fit:
    input:
        cases="results/impute/{dataset}.parquet",
        idata=f"{get_model_fit_dir(get_sensitivity_outcome(), '{dataset}')}/idata.nc",
    output:
        gate="results/sensitivity/model_fit_scores/{dataset}/gate.csv",
        loo="results/sensitivity/model_fit_scores/{dataset}/loo.pkl",
    log:
        "logs/sensitivity_score_model_fit/{dataset}.log",
    benchmark:
        "benchmarks/sensitivity_score_model_fit/{dataset}.tsv"
    conda:
        "../envs/model.yaml"
    params:
        model=config["model"],
    script:
        "../scripts/sensitivity_score_model_fit.py"


checkpoint sensitivity_lofo_psis:
    input:
        cases="results/impute/{dataset}.parquet",
        idata=get_lofo_full_fit("idata.nc"),
        gate=get_lofo_full_fit("gate.csv"),
    output:
        scores="results/sensitivity/lofo_psis/{pooling}/{dataset}.csv",
    log:
        "logs/sensitivity_lofo_psis/{pooling}/{dataset}.log",
    benchmark:
        "benchmarks/sensitivity_lofo_psis/{pooling}/{dataset}.tsv"
    wildcard_constraints:
        pooling="partial|complete|none",
    conda:
        "../envs/model.yaml"
    params:
        model=config["model"],
        sensitivity=config["sensitivity"],
    script:
        "../scripts/sensitivity_lofo_psis.py"


rule sensitivity_lofo:
    input:
        cases="results/impute/{dataset}.parquet",
    output:
        score="results/sensitivity/lofo/{pooling}/{dataset}/{force}.csv",
        gate="results/sensitivity/lofo/{pooling}/{dataset}/{force}.gate.csv",
    log:
        "logs/sensitivity_lofo/{pooling}/{dataset}/{force}.log",
    benchmark:
        "benchmarks/sensitivity_lofo/{pooling}/{dataset}/{force}.tsv"
    wildcard_constraints:
        pooling="partial|complete|none",
    priority: 1
    conda:
        "../envs/model.yaml"
    threads: 2
    params:
        model=config["model"],
        sensitivity=config["sensitivity"],
        seed=config["seed"],
    script:
        "../scripts/sensitivity_lofo.py"


rule sensitivity_compare:
    input:
        idata=get_comparison_fits("idata.nc"),
        gates=get_comparison_fits("gate.csv"),
    output:
        table="results/sensitivity/{analysis}.csv",
    log:
        "logs/sensitivity_compare/{analysis}.log",
    benchmark:
        "benchmarks/sensitivity_compare/{analysis}.tsv"
    wildcard_constraints:
        analysis="pooling|priors|trend",
    conda:
        "../envs/model.yaml"
    params:
        variants=get_comparison_variants,
        datasets=config["sensitivity"]["datasets"],
        model=config["model"],
        sensitivity=config["sensitivity"],
    script:
        "../scripts/sensitivity_compare.py"


rule sensitivity_loo:
    input:
        loo=get_pooling_fits("loo.pkl"),
        gates=get_pooling_fits("gate.csv"),
    output:
        table="results/sensitivity/pooling_loo.csv",
    log:
        "logs/sensitivity_loo/all.log",
    benchmark:
        "benchmarks/sensitivity_loo/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        variants=get_sensitivity_variants("pooling"),
        datasets=config["sensitivity"]["datasets"],
    script:
        "../scripts/sensitivity_loo.py"


rule sensitivity_lofo_combine:
    input:
        importance_sampled=get_lofo_importance_sampled(),
        refits=get_lofo_refits("csv"),
        gates=get_lofo_refits("gate.csv"),
    output:
        table="results/sensitivity/lofo.csv",
    log:
        "logs/sensitivity_lofo_combine/all.log",
    benchmark:
        "benchmarks/sensitivity_lofo_combine/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        max_pareto_k=config["sensitivity"]["lofo"]["importance_sampling"][
            "max_pareto_k"
        ],
    script:
        "../scripts/sensitivity_lofo_combine.py"


rule sensitivity_missing_data:
    input:
        multiple_imputation=f"results/model/{get_sensitivity_outcome()}/pooled/estimands.csv",
        idata=get_missing_data_fits("idata.nc"),
        gates=get_missing_data_fits("gate.csv"),
    output:
        table="results/sensitivity/missing_data.csv",
        tipping_point="results/sensitivity/tipping_point.csv",
    log:
        "logs/sensitivity_missing_data/all.log",
    benchmark:
        "benchmarks/sensitivity_missing_data/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        mnar=config["imputation"]["mnar"],
        mnar_fit_dirs=get_mnar_fit_dirs(),
        m=config["imputation"]["m"],
        prob_threshold=config["sensitivity"]["tipping_prob_reduction"],
    script:
        "../scripts/sensitivity_missing_data.py"


rule sensitivity_summary:
    input:
        tables=get_sensitivity_tables(),
    output:
        summary="results/sensitivity/summary.csv",
        figure=report(
            "results/sensitivity/summary.png",
            caption="Pooled risk difference per 100 CARA cases under every sensitivity fit (hollow: gate failed).",
            category="Sensitivity",
        ),
    log:
        "logs/sensitivity_summary/all.log",
    benchmark:
        "benchmarks/sensitivity_summary/all.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/sensitivity_summary.py"
