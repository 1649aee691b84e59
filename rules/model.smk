"""Stage: model (rules are added by the model work)."""
