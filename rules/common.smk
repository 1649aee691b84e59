"""Config validation and the decisions every stage shares (which forces, datasets, outcomes)."""

import os
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../config/schema/config.schema.yaml")

# Rule scripts import the cara_eval package from this checkout, also on cluster nodes and in conda envs.
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH")])
)


def get_mapping_path(force):
    """Mapping file that declares how one force's extract is read."""
    return str(Path(config["mappings_dir"]) / f"{force}.yaml")


def get_forces():
    """Forces listed in config, or every mapping file present when the list is empty."""
    if config.get("forces"):
        return list(config["forces"])
    return sorted(p.stem for p in Path(config["mappings_dir"]).glob("*.yaml"))


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


def get_final_output():
    """Everything `snakemake` builds by default: the report and what it reads."""
    return [
        "results/ingest/row_accounting.csv",
        "results/quality/completeness.csv",
        "results/spec/data_specification.csv",
    ]
