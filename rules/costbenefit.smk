"""Stage: costbenefit. Net monetary benefit, benefit-cost ratio, acceptability curve and cost per reoffence
avoided, per force and pooled, carried through every posterior draw of the any_reoffence risk difference.
"""


rule costbenefit_evaluate:
    input:
        draws="results/model/any_reoffence/pooled/effect_draws.parquet",
    output:
        summary="results/costbenefit/summary.csv",
        ceac="results/costbenefit/ceac.csv",
        ceac_figure=report(
            "results/costbenefit/ceac.png",
            caption="../report/captions/costbenefit_ceac.rst",
            category="Cost-benefit",
        ),
        unit_costs="results/costbenefit/unit_costs.csv",
    log:
        "logs/costbenefit_evaluate/all.log",
    benchmark:
        "benchmarks/costbenefit_evaluate/all.tsv"
    conda:
        "../envs/model.yaml"
    params:
        costbenefit=config["costbenefit"],
    script:
        "../scripts/costbenefit_evaluate.py"
