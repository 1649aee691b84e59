"""Impute: missingness diagnostics, chained-equation imputations across forces, MNAR-shifted and complete-case sets.
Hands imputed datasets results/impute/<dataset>.parquet to the model, outcomes, sensitivity and cross-check stages.
"""
