"""Stage: calibration (not in the default run: `snakemake calibration`). Replicate datasets simulated under the
synthetic generator's hierarchy, each fitted with the primary model; coverage of its intervals and the bias of the
naive and no-pooling answers."""


rule calibration:
    input:
        get_calibration_outputs(),


rule calibration_replicate:
    output:
        replicate="results/calibration/replicates/{replicate}.csv",
    log:
        "logs/calibration_replicate/{replicate}.log",
    benchmark:
        "benchmarks/calibration_replicate/{replicate}.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    params:
        calibration=config["calibration"],
        model=config["model"],
        seed=config["seed"],
    script:
        "../scripts/calibration_replicate.py"


rule calibration_summarise:
    input:
        replicates=get_calibration_replicates(),
    output:
        coverage="results/calibration/coverage.csv",
        figure=report(
            "results/calibration/coverage.png",
            caption="Coverage of the primary model's 50% and 90% intervals, and bias, over simulated replicates.",
            category="Calibration",
        ),
    log:
        "logs/calibration_summarise/all.log",
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/calibration_summarise.py"
