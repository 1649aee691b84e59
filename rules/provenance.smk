"""Stage: provenance. One record per run of what produced the results: code, config, software, input files."""


rule provenance_record:
    input:
        unpack(get_provenance_inputs),
    output:
        "results/provenance/run.json",
    log:
        "logs/provenance_record/run.log",
    benchmark:
        "benchmarks/provenance_record/run.tsv"
    conda:
        "../envs/ingest.yaml"
    params:
        config=config,
        commit=get_git_commit,
        repo=workflow.basedir,
    script:
        "../scripts/provenance_record.py"
