"""Stage: quality. The forces' inconsistent data made measurable: completeness, exclusions, follow-up,
cohort sizes, case mix and victim process measures, all from observed values before imputation.
"""


rule quality_profile:
    input:
        cases="results/ingest/cases.parquet",
        accounting="results/ingest/row_accounting.csv",
        # each force's `not_supplied` list and CARA start date
        mappings=get_mappings(),
    output:
        completeness="results/quality/completeness.csv",
        completeness_figure="results/quality/completeness.png",
        reasons="results/quality/reasons.csv",
        reasons_figure="results/quality/reasons.png",
        followup="results/quality/followup_coverage.csv",
        followup_figure="results/quality/followup_coverage.png",
        cohort_sizes="results/quality/cohort_sizes.csv",
        cohort_sizes_figure="results/quality/cohort_sizes.png",
        process_measures="results/quality/process_measures.csv",
    log:
        "logs/quality_profile/all.log",
    benchmark:
        "benchmarks/quality_profile/all.tsv"
    conda:
        "../envs/ingest.yaml"
    params:
        full_followup_days=config["outcomes"]["followup_days"],
    script:
        "../scripts/quality_profile.py"


rule quality_case_mix:
    input:
        cases="results/ingest/cases.parquet",
    output:
        case_mix="results/quality/case_mix.csv",
        case_mix_figure="results/quality/case_mix.png",
    log:
        "logs/quality_case_mix/all.log",
    benchmark:
        "benchmarks/quality_case_mix/all.tsv"
    conda:
        "../envs/ingest.yaml"
    params:
        smd_threshold=config["quality"]["smd_threshold"],
    script:
        "../scripts/quality_case_mix.py"
