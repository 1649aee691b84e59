"""Stage: provenance (rules are added by the provenance work)."""
