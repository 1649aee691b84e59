"""Cross-checks: frequentist regressions, interrupted time series and propensity weighting of the primary outcome.
Hands results/crosscheck/ estimates and balance tables to the report.
"""
