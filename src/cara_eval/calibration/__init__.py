"""Calibration: simulated replicates with known truth, fitted as the primary model is, for interval coverage.
Hands results/calibration/ coverage tables and figures to the report's appendix.
"""
