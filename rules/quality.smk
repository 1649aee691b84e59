"""Stage: quality (rules are added by the quality work)."""
