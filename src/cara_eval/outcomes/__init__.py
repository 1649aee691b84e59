"""Outcomes: secondary outcome models (number of DA reoffences, harm) on the primary model's force structure.
Hands pooled estimands under results/outcomes/ to the report.
"""
