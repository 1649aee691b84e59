"""Cost-benefit: net monetary benefit, benefit-cost ratio and acceptability from the posterior effect draws.
Hands results/costbenefit/ tables and the acceptability curve to the report.
"""
