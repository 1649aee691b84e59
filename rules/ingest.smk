"""Stage: ingest. Each force's extract read through its mapping into the canonical cases table, with
pseudonymised ids, eligibility applied, outcomes computed and every row accounted for.
"""


rule ingest_force:
    input:
        mapping=get_force_mapping,
        raw=get_raw_files,
        offence_types=config["offence_types"],
        harm_weights=config["harm_weights"],
    output:
        cases="results/ingest/{force}.parquet",
        accounting="results/ingest/{force}.accounting.csv",
        quarantine=get_quarantine_path(),
    log:
        "logs/ingest_force/{force}.log",
    benchmark:
        "benchmarks/ingest_force/{force}.tsv"
    conda:
        "../envs/ingest.yaml"
    params:
        raw_dir=config["raw_dir"],
        pseudonymisation=config["pseudonymisation"],
        eligibility=config["eligibility"],
        followup_days=config["outcomes"]["followup_days"],
    script:
        "../scripts/ingest_force.py"


rule ingest_combine:
    input:
        cases=expand("results/ingest/{force}.parquet", force=get_forces()),
        accounting=expand("results/ingest/{force}.accounting.csv", force=get_forces()),
    output:
        cases="results/ingest/cases.parquet",
        accounting="results/ingest/row_accounting.csv",
    log:
        "logs/ingest_combine/all.log",
    benchmark:
        "benchmarks/ingest_combine/all.tsv"
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_combine.py"


rule spec_build:
    input:
        mappings=get_mappings(),
    output:
        csv="results/spec/data_specification.csv",
        md="results/spec/data_specification.md",
    log:
        "logs/spec_build/all.log",
    benchmark:
        "benchmarks/spec_build/all.tsv"
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_spec.py"
