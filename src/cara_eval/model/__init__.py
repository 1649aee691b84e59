"""Model: aggregates cases into cells and fits the censor-aware hierarchical effectiveness model, with gate and estimands.
Hands InferenceData, gate tables and pooled estimands under results/model/ to cost-benefit, sensitivity and the report.
"""
