"""Stage: planning. Expected precision and assurance of the risk difference after more months of data, nationally
and per force, and the months until each answer is conclusive."""


rule planning_precision:
    input:
        idata=get_planning_fit_files,
        idata_no_pooling=get_planning_no_pooling_file,
        cases=get_planning_cases,
    output:
        precision="results/planning/precision.csv",
        conclusive="results/planning/months_to_conclusive.csv",
        figure=report(
            "results/planning/months_to_conclusive.png",
            caption="../report/captions/planning_assurance.rst",
            category="Planning",
        ),
    log:
        "logs/planning_precision/all.log",
    benchmark:
        "benchmarks/planning_precision/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        planning=config["planning"],
        priors=config["model"]["priors"],
        followup_days=config["outcomes"]["followup_days"],
        seed=config["seed"],
    script:
        "../scripts/planning_precision.py"
