"""Stage: ingest (rules are added by the ingest work)."""
