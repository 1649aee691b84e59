"""Decisions of the report stage (its get_* functions), kept apart from its rules."""


from pathlib import Path

import yaml


def get_report_sources():
    """The .qmd main file, its partials and styling: an edit to any of them reruns the render."""
    return sorted(str(p) for p in (Path(workflow.basedir) / "report").iterdir() if p.is_file())


def get_report_inputs(wildcards):
    """The contract's result files the report reads (docs/contracts.md), for the primary outcome."""
    outcome = config["report"]["primary_outcome"]
    return {
        "row_accounting": "results/ingest/row_accounting.csv",
        "completeness": "results/quality/completeness.csv",
        "completeness_figure": "results/quality/completeness.png",
        "followup_coverage": "results/quality/followup_coverage.csv",
        "cohort_sizes": "results/quality/cohort_sizes.csv",
        "case_mix": "results/quality/case_mix.csv",
        "process_measures": "results/quality/process_measures.csv",
        "data_specification": "results/spec/data_specification.csv",
        "estimands": f"results/model/{outcome}/pooled/estimands.csv",
        "forest": f"results/model/{outcome}/pooled/forest.csv",
        "gates": [f"results/model/{outcome}/{dataset}/gate.csv" for dataset in get_imputation_datasets()],
        "provenance": "results/provenance/run.json",
        "sources": get_report_sources(),
    }


def get_report_forces(wildcards):
    """Display name and comparison design of each force, from its mapping file (shown in the report)."""
    forces = {}
    for force in get_forces():
        mapping = yaml.safe_load(Path(get_mapping_path(force)).read_text())
        forces[force] = {"display_name": mapping.get("display_name"), "design": mapping.get("design") or {}}
    return forces


def get_report_config(wildcards):
    """The config sections the methods section prints."""
    shown = ("outcomes", "eligibility", "quality", "imputation", "model")
    return {section: config[section] for section in shown if section in config}
