"""Synthetic data: nine force extracts in their own formats from one seeded event process, with the truth file.
Hands raw extracts to data/raw/<force>/ (as a force would) and data/truth/truth.json to the truth checks only.
"""
