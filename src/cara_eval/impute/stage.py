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
    unrecorded_warnings,
)
from cara_eval.impute.fields import structural_pairs, supplied_fields

log = logging.getLogger(__name__)


@dataclass
class Diagnostics:
    fields: list[str]  # the configured fields some force records (the ones imputed)
    missingness: pd.DataFrame
    patterns: pd.DataFrame
    models: pd.DataFrame
    structural: pd.DataFrame
    warnings: pd.DataFrame


def diagnose(cases: pd.DataFrame, not_supplied: Mapping[str, list[str]], section: Mapping) -> Diagnostics:
    """All missingness diagnostics of the fields some force records; a warning for each field none records."""
    fields = supplied_fields(cases, section["fields"])
    structural = structural_pairs(cases, fields, not_supplied)
    missingness = missingness_by_force(cases, fields, structural)
    share_incomplete = float(cases[fields].isna().any(axis=1).mean())
    warned = missingness_warnings(missingness, share_incomplete, section["warn_share_missing"], section["m"],
                                  section["publication_m_structural"])
    unrecorded = [f for f in section["fields"] if f not in fields]
    if unrecorded:
        warned = pd.concat([warned, unrecorded_warnings(unrecorded, section["warn_share_missing"])], ignore_index=True)
    for message in warned["message"]:
        log.warning(message)
    for pair in structural.itertuples():
        log.info("structural: %s never records %s (%s); imputed from %s", pair.force, pair.field, pair.reason,
                 pair.imputed_from)
    return Diagnostics(
        fields=fields,
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
    fields = supplied_fields(cases, section["fields"])
    mnar = None if delta is None else MnarShift(section["mnar"]["field"], delta)
    if mnar is not None and mnar.field not in fields:
        log.warning("MNAR field %s is recorded by no force: nothing imputed to shift, delta %g changes nothing",
                    mnar.field, delta)
        mnar = None
    settings = ImputationSettings.from_config({**section, "fields": fields})
    result = impute(cases, settings, structural, seed=seed + k, mnar=mnar)
    result.data = CASES_SCHEMA.validate(result.data)
    remaining = result.data[fields].isna().sum()
    assert remaining.sum() == 0, f"fields still missing after imputation: {remaining[remaining > 0].to_dict()}"
    return result


def complete_case_dataset(cases: pd.DataFrame, section: Mapping) -> pd.DataFrame:
    """Cases with every recorded configured covariate observed, validated against the canonical schema."""
    data = complete_cases(cases, supplied_fields(cases, section["fields"]))
    log.info("complete cases: %d of %d (%.1f%%)", len(data), len(cases), 100 * len(data) / max(len(cases), 1))
    return CASES_SCHEMA.validate(data)
