"""Decisions of the ingest stage (its get_* functions), kept apart from its rules."""


def get_force_mapping(wildcards):
    """Mapping file of the force being ingested."""
    return get_mapping_path(wildcards.force)
