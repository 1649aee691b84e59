"""Quality: completeness, exclusion reasons, follow-up coverage, cohort sizes, case mix and victim process measures.
Hands tables and figures under results/quality/ to the report; nothing downstream models from them.
"""
