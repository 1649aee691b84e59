"""Config validation and the decisions every stage shares (which forces, datasets, outcomes).

Stage-specific decisions live in rules/functions/<stage>.smk, included here, so that rule files only
declare rules (the linter asks for rules and functions apart).
"""

import sys
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../config/schema/config.schema.yaml")

# The workflow's own decisions import cara_eval at parse time; rule scripts import it through
# scripts/cara_eval (a link to src/cara_eval), because Snakemake puts a script's folder on sys.path.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from cara_eval.model.effectiveness import sampler_problem


wildcard_constraints:
    force=r"(?!cases\.)[a-z0-9_]+",
    k=r"\d+",


def get_mapping_path(force):
    """Mapping file that declares how one force's extract is read."""
    return str(Path(config["mappings_dir"]) / f"{force}.yaml")


def get_forces():
    """Forces listed in config, or every mapping file present when the list is empty."""
    if config.get("forces"):
        return list(config["forces"])
    return sorted(p.stem for p in Path(config["mappings_dir"]).glob("*.yaml"))


def check_forces():
    """Every force listed in config has a mapping file, once: a clear error before any job runs."""
    listed = config.get("forces") or []
    twice = sorted({force for force in listed if listed.count(force) > 1})
    if twice:
        raise WorkflowError(f"config forces: listed more than once: {', '.join(twice)}")
    unknown = [force for force in listed if not Path(get_mapping_path(force)).is_file()]
    if unknown:
        known = sorted(p.stem for p in Path(config["mappings_dir"]).glob("*.yaml"))
        raise WorkflowError(
            f"config forces: no mapping file for {', '.join(unknown)} (expected "
            f"{', '.join(get_mapping_path(force) for force in unknown)}); forces with a mapping: {', '.join(known)}"
        )


def check_restricted_dir():
    """Quarantined rows hold raw personal data: never under results/, which is shared with the team."""
    restricted = Path(config["restricted_dir"]).resolve()
    results = Path("results").resolve()
    if restricted == results or restricted.is_relative_to(results):
        raise WorkflowError(
            f"config restricted_dir: {config['restricted_dir']} lies inside results/, which must "
            "hold only pseudonymised or aggregate data"
        )


def check_sampler_settings():
    """Sampler settings that cannot go together (cara_eval.model.effectiveness.sampler_problem): say so before any
    job runs, for the model and for each section whose `fit` is laid over it, not inside a fit job.
    """
    sections = ("secondary_outcomes", "calibration", "sensitivity")
    overlays = {
        "model": {},
        **{f"{s}.fit": config.get(s, {}).get("fit", {}) for s in sections},
    }
    for name, overlay in overlays.items():
        settings = {**config["model"], **overlay}
        if problem := sampler_problem(
            settings["sampler"], settings["mass_matrix"], settings["target_accept"]
        ):
            raise WorkflowError(f"config {name}: {problem}")


check_forces()
check_restricted_dir()
check_sampler_settings()


def get_quarantine_path():
    """Where each force's quarantined rows (raw values: personal data) are written."""
    return str(Path(config["restricted_dir"]) / "quarantine" / "{force}.csv")


def get_mappings():
    """Mapping files of every analysed force (designs, not_supplied lists, who supplies what)."""
    return [get_mapping_path(force) for force in get_forces()]


def get_raw_files(wildcards):
    """Every raw file in a force's folder: replacing one reruns that force only."""
    folder = Path(config["raw_dir"]) / wildcards.force
    if not folder.is_dir():
        raise WorkflowError(
            f"No raw data for force '{wildcards.force}': expected folder {folder} "
            f"(mapping {get_mapping_path(wildcards.force)})."
        )
    return sorted(str(p) for p in folder.iterdir() if p.is_file())


def get_imputation_datasets():
    """Imputed datasets the primary fits fan out over: imp1..impM."""
    return [f"imp{k}" for k in range(1, config["imputation"]["m"] + 1)]


include: "functions/ingest.smk"
include: "functions/impute.smk"
include: "functions/model.smk"
include: "functions/outcomes.smk"
include: "functions/crosscheck.smk"
include: "functions/costbenefit.smk"
include: "functions/sensitivity.smk"
include: "functions/planning.smk"
include: "functions/calibration.smk"
include: "functions/provenance.smk"
include: "functions/report.smk"


def get_final_output():
    """Everything `snakemake` builds by default: the report and everything it shows."""
    return [
        "results/ingest/row_accounting.csv",
        "results/spec/data_specification.csv",
        "results/quality/completeness.csv",
        "results/quality/case_mix.csv",
        *get_impute_outputs(),
        *get_model_outputs(),
        *get_secondary_outcome_outputs(),
        *get_crosscheck_outputs(),
        *get_costbenefit_outputs(),
        *get_sensitivity_outputs(),
        *get_planning_outputs(),
        "results/provenance/run.json",
        "results/report/cara_report.html",
        "results/report/cara_report.pdf",
        *get_force_report_outputs(),
    ]
