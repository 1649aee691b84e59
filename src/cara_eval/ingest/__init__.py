"""Ingest: reads each force's extract through its mapping, quarantines bad rows, applies eligibility, pseudonymises.
Hands canonical pseudonymised cases with outcomes (results/ingest/) and the data specification to quality and impute.
"""
