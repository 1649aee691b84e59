"""Stage: report (rules are added by the report work)."""
