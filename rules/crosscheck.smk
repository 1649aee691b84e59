"""Stage: crosscheck. Frequentist methods next to the Bayesian estimates: pooled and per-force GLMs with a
wild cluster bootstrap, Poisson rates, interrupted time series and propensity weighting.
"""


rule crosscheck_regression:
    input:
        cases=get_crosscheck_cases(),
    output:
        estimates="results/crosscheck/regression.csv",
    log:
        "logs/crosscheck_regression/all.log",
    benchmark:
        "benchmarks/crosscheck_regression/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        covariates=config["crosscheck"]["covariates"],
        level=config["crosscheck"]["interval_level"],
        wild_bootstrap=config["crosscheck"]["wild_bootstrap"],
        followup_days=config["outcomes"]["followup_days"],
        seed=config["seed"],
    script:
        "../scripts/crosscheck_regression.py"


rule crosscheck_its:
    input:
        cases=get_crosscheck_cases(),
        mappings=get_mappings(),
    output:
        estimates="results/crosscheck/its.csv",
    log:
        "logs/crosscheck_its/all.log",
    benchmark:
        "benchmarks/crosscheck_its/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        level=config["crosscheck"]["interval_level"],
        its=config["crosscheck"]["its"],
        followup_days=config["outcomes"]["followup_days"],
    script:
        "../scripts/crosscheck_its.py"


rule crosscheck_propensity:
    input:
        cases=get_crosscheck_cases(),
    output:
        estimates="results/crosscheck/propensity.csv",
        balance="results/crosscheck/balance.csv",
    log:
        "logs/crosscheck_propensity/all.log",
    benchmark:
        "benchmarks/crosscheck_propensity/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        covariates=config["crosscheck"]["covariates"],
        level=config["crosscheck"]["interval_level"],
        propensity=config["crosscheck"]["propensity"],
        followup_days=config["outcomes"]["followup_days"],
        seed=config["seed"],
    script:
        "../scripts/crosscheck_propensity.py"


rule crosscheck_combine:
    input:
        regression="results/crosscheck/regression.csv",
        its="results/crosscheck/its.csv",
        propensity="results/crosscheck/propensity.csv",
    output:
        estimates="results/crosscheck/estimates.csv",
    log:
        "logs/crosscheck_combine/all.log",
    benchmark:
        "benchmarks/crosscheck_combine/all.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/crosscheck_combine.py"
