"""What each imputable covariate is, and which force-field pairs are structurally missing.

The kinds decide the imputation model: numeric fields get a linear model with predictive mean matching,
two-level fields a logistic model, unordered categories a multinomial logit (so categories stay categories).
"""

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import yaml

from cara_eval.common.schema import CARA_PROCESS_FIELDS, ETHNICITIES, OUTCOME_FIELDS, RELATIONSHIPS, SEXES

# Levels from the canonical schema; the first level is the reference category of the imputation model.
CATEGORY_LEVELS: dict[str, tuple[str, ...]] = {
    "dash_risk": ("standard", "medium"),  # high risk is ineligible, so never imputed
    "sex": tuple(SEXES),
    "victim_sex": tuple(SEXES),
    "ethnicity": tuple(ETHNICITIES),
    "relationship": tuple(RELATIONSHIPS),
}
BOOLEAN_FIELDS = frozenset({"together_at_index"})
NUMERIC_FIELDS = frozenset({"age", "prior_da_incidents"})

# Outcomes and process measures are analysed as recorded: imputing them would invent the answer.
NEVER_IMPUTED = frozenset(
    OUTCOME_FIELDS + CARA_PROCESS_FIELDS + ["followup_days", "victim_contacted", "victim_consulted"]
)

STRUCTURAL_COLUMNS = ["force", "field", "reason", "n_cases", "imputed_from"]


class ImputationInputError(ValueError):
    """The cases cannot be imputed as configured (unknown field, field missing in every force)."""


def field_kind(field: str) -> str:
    """`numeric`, `binary` or `categorical`: which imputation model the field gets."""
    if field in NUMERIC_FIELDS:
        return "numeric"
    if field in BOOLEAN_FIELDS or len(CATEGORY_LEVELS.get(field, ())) == 2:
        return "binary"
    if field in CATEGORY_LEVELS:
        return "categorical"
    raise ImputationInputError(f"'{field}' is not an imputable covariate")


def field_levels(field: str) -> tuple:
    """Levels of a binary or categorical field, reference first (booleans: False, True)."""
    if field in BOOLEAN_FIELDS:
        return (False, True)
    return CATEGORY_LEVELS[field]


def check_fields(cases: pd.DataFrame, fields: Iterable[str]) -> None:
    """Stop early, naming the field, when a configured field is not an imputable covariate of the cases."""
    for field in fields:
        if field in NEVER_IMPUTED:
            raise ImputationInputError(f"'{field}' is an outcome or process measure and is never imputed")
        field_kind(field)
        if field not in cases.columns:
            raise ImputationInputError(f"field '{field}' is not a column of the cases table")


def supplied_fields(cases: pd.DataFrame, fields: Iterable[str]) -> list[str]:
    """The configured fields some force records: only these are imputed. A field no force records has
    nothing to impute it from; it stays empty and the models leave it out (cara_eval.model.terms)."""
    check_fields(cases, fields)
    return [field for field in fields if cases[field].notna().any()]


def read_not_supplied(mapping_paths: Iterable[str | Path]) -> dict[str, list[str]]:
    """Force -> fields its mapping file declares it never records (`cases.not_supplied`)."""
    declared = {}
    for path in mapping_paths:
        mapping = yaml.safe_load(Path(path).read_text())
        declared[mapping["force"]] = list((mapping.get("cases") or {}).get("not_supplied") or [])
    return declared


def structural_pairs(
    cases: pd.DataFrame, fields: Iterable[str], not_supplied: Mapping[str, Iterable[str]]
) -> pd.DataFrame:
    """Force-field pairs with no information in the force: declared not supplied, or 100% missing.

    Such a field is imputed only from the forces that record it (`imputed_from`), so every pair is listed
    for the report.
    """
    fields = list(fields)
    rows = []
    for force, group in cases.groupby("force", sort=True, observed=True):
        declared = set(not_supplied.get(force, ()))
        for field in fields:
            if field in declared:
                reason = "not_supplied"
            elif group[field].isna().all():
                reason = "all_missing"
            else:
                continue
            rows.append({"force": force, "field": field, "reason": reason, "n_cases": len(group)})
    pairs = pd.DataFrame(rows, columns=STRUCTURAL_COLUMNS[:-1])
    recording = {
        field: sorted(set(cases["force"].unique()) - set(pairs.loc[pairs["field"] == field, "force"]))
        for field in fields
    }
    pairs["imputed_from"] = [";".join(recording[field]) for field in pairs["field"]]
    return pairs[STRUCTURAL_COLUMNS]
