"""The impute stage as the rule scripts call it: config section in, validated tables out."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from cara_eval.common.schema import CASES_SCHEMA
from cara_eval.impute.chained import ImputationResult, ImputationSettings, MnarShift, complete_cases, impute
from cara_eval.impute.diagnostics import (
    missingness_by_force,
    missingness_models,
    missingness_patterns,
    missingness_warnings,
)
from cara_eval.impute.fields import check_fields, structural_pairs

log = logging.getLogger(__name__)


@dataclass
class Diagnostics:
    missingness: pd.DataFrame
    patterns: pd.DataFrame
    models: pd.DataFrame
    structural: pd.DataFrame
    warnings: pd.DataFrame


def diagnose(cases: pd.DataFrame, not_supplied: Mapping[str, list[str]], section: Mapping) -> Diagnostics:
    """All missingness diagnostics; stops naming the field when one is missing in every force."""
    fields = list(section["fields"])
    check_fields(cases, fields)
    structural = structural_pairs(cases, fields, not_supplied)
    missingness = missingness_by_force(cases, fields, structural)
    share_incomplete = float(cases[fields].isna().any(axis=1).mean())
    warned = missingness_warnings(missingness, share_incomplete, section["warn_share_missing"], section["m"],
                                  section["publication_m_structural"])
    for message in warned["message"]:
        log.warning(message)
    for pair in structural.itertuples():
        log.info("structural: %s never records %s (%s); imputed from %s", pair.force, pair.field, pair.reason,
                 pair.imputed_from)
    return Diagnostics(
        missingness=missingness,
        patterns=missingness_patterns(cases, fields),
        models=missingness_models(cases, fields, structural),
        structural=structural,
        warnings=warned,
    )


def imputed_dataset(
    cases: pd.DataFrame, structural: pd.DataFrame, section: Mapping, seed: int, k: int, delta: float | None = None
) -> ImputationResult:
    """Imputation k (seed + k), optionally MNAR-shifted by delta; validated against the canonical schema.

    With delta = 0 the result equals imputation k exactly, so the sensitivity curve starts at the primary analysis.
    """
    mnar = None if delta is None else MnarShift(section["mnar"]["field"], delta)
    result = impute(cases, ImputationSettings.from_config(section), structural, seed=seed + k, mnar=mnar)
    result.data = CASES_SCHEMA.validate(result.data)
    remaining = result.data[list(section["fields"])].isna().sum()
    assert remaining.sum() == 0, f"fields still missing after imputation: {remaining[remaining > 0].to_dict()}"
    return result


def complete_case_dataset(cases: pd.DataFrame, section: Mapping) -> pd.DataFrame:
    """Cases with every configured covariate observed, validated against the canonical schema."""
    data = complete_cases(cases, section["fields"])
    log.info("complete cases: %d of %d (%.1f%%)", len(data), len(cases), 100 * len(data) / max(len(cases), 1))
    return CASES_SCHEMA.validate(data)
