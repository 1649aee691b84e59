"""Stage: report. The published report (HTML + PDF) from the result tables, figures and config values it shows;
its sources are report/*.qmd, so editing report text reruns only report_render."""


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
