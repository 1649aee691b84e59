"""Decisions of the provenance stage (its get_* functions), kept apart from its rules."""

import os
from types import SimpleNamespace


def get_provenance_inputs(wildcards):
    """Every file the analysis reads from outside results/: raw extracts, mapping files, config files."""
    raw = [
        f for force in get_forces() for f in get_raw_files(SimpleNamespace(force=force))
    ]
    mappings = get_mappings()
    # Config files as paths relative to the working directory, once each: the same run in a copied
    # directory, or with the default config also named by --configfile, has the same inputs.
    configs = [
        *dict.fromkeys(os.path.relpath(path) for path in workflow.configfiles),
        "config/schema/config.schema.yaml",
        config["offence_types"],
        config["harm_weights"],
    ]
    return {"raw": raw, "mapping": mappings, "config": configs}


def get_git_commit(wildcards):
    """The workflow's commit: a new commit reruns provenance (a dirty tree is recorded, not a trigger)."""
    from cara_eval.provenance.record import git_state

    return git_state(workflow.basedir)["commit"]
