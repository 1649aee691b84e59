"""Stage: report. The published report (HTML + PDF) from the result tables, figures and config values it shows;
its sources are report/*.qmd, so editing report text reruns only report_render. Beside it, the hex map of the forces'
effects (report_force_map) and a feedback report per force (report_force)."""


rule report_render:
    input:
        unpack(get_report_inputs),
    output:
        html=report("results/report/cara_report.html", category="Report"),
        pdf=report("results/report/cara_report.pdf", category="Report"),
    log:
        "logs/report_render/report.log",
    benchmark:
        "benchmarks/report_render/report.tsv"
    conda:
        "../envs/report.yaml"
    params:
        report=config["report"],
        config=get_report_config,
        forces=get_report_forces,
        archive="results/report/archive",
    script:
        "../scripts/report_render.py"


rule report_force_map:
    input:
        unpack(get_force_map_inputs),
    output:
        report("results/report/force_map.png", category="Report"),
    log:
        "logs/report_force_map/force_map.log",
    benchmark:
        "benchmarks/report_force_map/force_map.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report_force_map.py"


rule report_force:
    input:
        unpack(get_force_report_inputs),
    output:
        html=report("results/report/forces/{force}.html", category="Force reports"),
        pdf=report("results/report/forces/{force}.pdf", category="Force reports"),
    log:
        "logs/report_force/{force}.log",
    benchmark:
        "benchmarks/report_force/{force}.tsv"
    # After every other ready job: the national report, otherwise the last job and alone on one core, then renders
    # while the force reports fill the other core (README, Quick start).
    priority: -1
    conda:
        "../envs/report.yaml"
    params:
        report=config["report"],
        config=get_report_config,
        forces=get_report_forces,
    script:
        "../scripts/report_force.py"
