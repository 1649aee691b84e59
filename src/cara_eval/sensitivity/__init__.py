"""Sensitivity: refits of the primary model under other pooling, priors, missing-data assumptions and trends.
Hands results/sensitivity/ summary tables and figures to the report.
"""
