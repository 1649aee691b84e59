"""Provenance: git commit, config, package versions and SHA-256 of every input of a run.
Hands results/provenance/run.json to the report's reproducibility appendix and change log.
"""
