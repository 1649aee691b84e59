"""Decisions of the report stage (its get_* functions), kept apart from its rules."""

import hashlib
from pathlib import Path

import yaml

from cara_eval.calibration.summary import SUMMARY_FILES, summary_source


def get_report_sources():
    """The .qmd main file, its partials and styling: an edit to any of them reruns the render."""
    return sorted(
        str(p) for p in (Path(workflow.basedir) / "report").iterdir() if p.is_file()
    )


REPORT_STYLES = ("cara_report.css", "cara_report_header.typ")
# The result tables a force report reads (a subset of the national report's, so both show the same numbers).
FORCE_REPORT_TABLES = (
    "row_accounting",
    "completeness",
    "cohort_sizes",
    "process_measures",
    "estimands",
    "forest",
    "terms",
    "planning_precision",
    "planning_conclusive",
)


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
        "terms": f"results/model/{outcome}/terms.csv",
        **{
            f"outcome_{name}_estimands": f"results/outcomes/{name}/pooled/estimands.csv"
            for name in config["secondary_outcomes"]["outcomes"]
        },
        "gates": [
            f"{get_model_fit_dir(outcome, dataset)}/gate.csv"
            for dataset in get_imputation_datasets()
        ]
        + [f"results/model/{outcome}/pooled/gate.csv"],
        "crosscheck_estimates": "results/crosscheck/estimates.csv",
        "crosscheck_balance": "results/crosscheck/balance.csv",
        "costbenefit_summary": "results/costbenefit/summary.csv",
        "costbenefit_ceac": "results/costbenefit/ceac.csv",
        "costbenefit_unit_costs": "results/costbenefit/unit_costs.csv",
        "planning_precision": "results/planning/precision.csv",
        "planning_conclusive": "results/planning/months_to_conclusive.csv",
        "provenance": "results/provenance/run.json",
        "force_map": "results/report/force_map.png",
        "sources": get_report_sources(),
        **get_report_sensitivity_inputs(),
    }


def get_report_sensitivity_inputs():
    """The sensitivity summary (and MNAR tipping point) when the config asks for any sensitivity analysis."""
    if not config["sensitivity"]["analyses"]:
        return {}
    inputs = {"sensitivity_summary": "results/sensitivity/summary.csv"}
    if "missing_data" in config["sensitivity"]["analyses"]:
        inputs["sensitivity_tipping_point"] = "results/sensitivity/tipping_point.csv"
    return inputs


def get_report_forces(wildcards):
    """Display name and comparison design of each force, from its mapping file (shown in the report)."""
    forces = {}
    for force in get_forces():
        mapping = yaml.safe_load(Path(get_mapping_path(force)).read_text())
        forces[force] = {
            "display_name": mapping.get("display_name"),
            "design": mapping.get("design") or {},
        }
    return forces


def get_report_config(wildcards):
    """The config sections the report prints, and the last calibration run (see get_report_calibration_run)."""
    shown = (
        "outcomes",
        "eligibility",
        "quality",
        "imputation",
        "model",
        "calibration",
        "planning",
    )
    return {
        **{section: config[section] for section in shown if section in config},
        "calibration_run": get_report_calibration_run(),
    }


def get_report_calibration_run():
    """The calibration's tables and run record, if any (cara_eval.calibration.summary.summary_source: this
    checkout's results/calibration, else the newest copy in config report.calibration_archive), as paths and
    checksums: params, not inputs.

    Calibration is not part of the default run; as inputs they would pull its replicate fits into every report
    build (and rerun them whenever the model config changes). As params the report shows whatever run exists,
    and a new calibration run (new checksums) re-renders the report. Keys: coverage, targets, run, sbc_ranks,
    sbc_uniformity (each present when its file is), archive (the folder, when the summary is an archived copy), and
    sha256 of the files.
    """
    directory, archived = summary_source(
        "results/calibration", config["report"].get("calibration_archive")
    )
    if directory is None:
        return {}
    present = {
        key: directory / name
        for key, name in SUMMARY_FILES.items()
        if (directory / name).is_file()
    }
    digest = hashlib.sha256()
    for path in present.values():
        digest.update(path.read_bytes())
    return {
        **{key: str(path.resolve()) for key, path in present.items()},
        **({"archive": str(directory)} if archived else {}),
        "sha256": digest.hexdigest(),
    }


def get_force_map_inputs(wildcards):
    """The partially pooled per-force effects (forest table) and the tile positions."""
    outcome = config["report"]["primary_outcome"]
    return {
        "forest": f"results/model/{outcome}/pooled/forest.csv",
        "tiles": config["report"]["force_tiles"],
    }


def get_force_report_inputs(wildcards):
    """A force report's tables (the national report's, FORCE_REPORT_TABLES), tiles, sources and shared styles."""
    national = get_report_inputs(wildcards)
    report_dir = Path(workflow.basedir) / "report"
    return {
        **{name: national[name] for name in FORCE_REPORT_TABLES},
        "tiles": config["report"]["force_tiles"],
        "sources": sorted(
            str(p) for p in (report_dir / "force").iterdir() if p.is_file()
        ),
        "styles": [str(report_dir / name) for name in REPORT_STYLES],
    }


def get_force_report_outputs():
    """One feedback report (HTML and PDF) per force: part of the default run."""
    return expand(
        "results/report/forces/{force}.{ext}", force=get_forces(), ext=("html", "pdf")
    )
