"""Stage: calibration (not in the default run: `snakemake calibration`). Replicate datasets of each scenario of
the grid (config calibration.scenarios), simulated under the synthetic generator's hierarchy, each fitted with the
primary model; coverage of its intervals and the bias of the naive and no-pooling answers. Simulation-based
calibration: parameters drawn from the model's prior, ranks of the truth among the posterior draws.
One scenario alone: `snakemake results/calibration/<scenario>/coverage.csv`."""


rule calibration:
    input:
        get_calibration_outputs(),


rule calibration_replicate:
    output:
        replicate="results/calibration/replicates/{scenario}/{replicate}.csv",
        provenance="results/calibration/replicates/{scenario}/{replicate}.json",
    log:
        "logs/calibration_replicate/{scenario}/{replicate}.log",
    benchmark:
        "benchmarks/calibration_replicate/{scenario}/{replicate}.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    params:
        calibration=get_replicate_calibration,
        model=get_replicate_model(),
        compile_dir=config["model"]["compile_dir"],
        seed=config["seed"],
        store=config["calibration"]["store"],
    script:
        "../scripts/calibration_replicate.py"


rule calibration_summarise_scenario:
    input:
        replicates=get_scenario_replicates,
    output:
        coverage="results/calibration/{scenario}/coverage.csv",
    log:
        "logs/calibration_summarise_scenario/{scenario}.log",
    benchmark:
        "benchmarks/calibration_summarise_scenario/{scenario}.tsv"
    conda:
        "../envs/model.yaml"
    params:
        unmixed_r_hat=config["calibration"]["refit_max_r_hat"],
    script:
        "../scripts/calibration_summarise_scenario.py"


rule calibration_summarise:
    input:
        coverages=get_scenario_coverages(),
    output:
        coverage="results/calibration/coverage.csv",
        targets="results/calibration/targets.csv",
        figure=report(
            "results/calibration/coverage.png",
            caption="Coverage of the primary model's 90% intervals per scenario, and bias, over simulated replicates.",
            category="Calibration",
        ),
        run="results/calibration/run.json",
    log:
        "logs/calibration_summarise/all.log",
    benchmark:
        "benchmarks/calibration_summarise/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        calibration=config["calibration"],
        replicate_counts=get_calibration_replicate_counts(),
    script:
        "../scripts/calibration_summarise.py"


rule calibration_sbc_replicate:
    output:
        ranks="results/calibration/sbc/{replicate}.csv",
        provenance="results/calibration/sbc/{replicate}.json",
    log:
        "logs/calibration_sbc_replicate/{replicate}.log",
    benchmark:
        "benchmarks/calibration_sbc_replicate/{replicate}.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    params:
        calibration=get_sbc_calibration(),
        model=get_replicate_model(),
        compile_dir=config["model"]["compile_dir"],
        seed=config["seed"],
        store=config["calibration"]["store"],
    script:
        "../scripts/calibration_sbc_replicate.py"


rule calibration_sbc_summarise:
    input:
        ranks=get_sbc_replicates(),
    output:
        ranks="results/calibration/sbc_ranks.csv",
        uniformity="results/calibration/sbc_uniformity.csv",
        figure=report(
            "results/calibration/sbc_ranks.png",
            caption="Simulation-based calibration: ranks of prior-drawn true values among posterior draws.",
            category="Calibration",
        ),
    log:
        "logs/calibration_sbc_summarise/all.log",
    benchmark:
        "benchmarks/calibration_sbc_summarise/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        bins=config["calibration"]["sbc"]["bins"],
    script:
        "../scripts/calibration_sbc_summarise.py"
