"""Data-quality profile and cohort description: the forces' inconsistent data, made measurable.

Every table here is computed from the clean canonical cases as observed (before imputation) and from
the ingest row accounting. The figures in `cara_eval.quality.figures` draw these tables only, so the
numbers in the report and the pictures beside them cannot disagree.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cara_eval.common.disclosure import NOT_RECORDED
from cara_eval.common.schema import ARMS, CARA_PROCESS_FIELDS, CASES_SCHEMA
from cara_eval.ingest.mapping import load_mapping

# Null by design rather than by a gap in recording: no CARA case has a comparison type, and no case
# without a reoffence (or with a pre-counted flag) has a time to first reoffence.
NULL_BY_DESIGN = ("comparison_type", "days_to_first")
# Canonical fields whose completeness differs between forces (required fields never miss).
PROFILED_FIELDS = tuple(
    name for name, column in CASES_SCHEMA.columns.items() if column.nullable and name not in NULL_BY_DESIGN
)

NUMERIC_COVARIATES = ("age", "prior_da_incidents")
CATEGORICAL_COVARIATES = (
    "offence_type",
    "dash_risk",
    "sex",
    "ethnicity",
    "victim_sex",
    "relationship",
    "together_at_index",
)
PROCESS_MEASURES = ("victim_contacted", "victim_consulted")

POOLED = "all"
REASON_CATEGORIES = ("ineligible", "quarantined")


@dataclass(frozen=True)
class ForceDesign:
    """What a force's mapping file says about its data, as far as the profile needs it."""

    cara_start: pd.Timestamp
    not_supplied: frozenset[str]


def read_force_designs(mapping_paths: Iterable[str | Path]) -> dict[str, ForceDesign]:
    """CARA start and never-recorded fields of each force, keyed by force, from its mapping file."""
    designs = {}
    for path in mapping_paths:
        mapping = load_mapping(path)
        designs[mapping["force"]] = ForceDesign(
            cara_start=mapping["design"]["cara_start"],
            not_supplied=frozenset(mapping["cases"].get("not_supplied") or ()),
        )
    return designs


def _not_supplied(designs: Mapping[str, ForceDesign], force: str) -> frozenset[str]:
    design = designs.get(force)
    return design.not_supplied if design else frozenset()


def _force_order(forces: Iterable[str]) -> list[str]:
    """Forces in sorted order, the pooled row last."""
    return sorted(set(forces) - {POOLED}) + ([POOLED] if POOLED in set(forces) else [])


def completeness(cases: pd.DataFrame, designs: Mapping[str, ForceDesign]) -> pd.DataFrame:
    """Share missing of each profiled field per force; `structural` when the force never records it.

    Structural: every applicable value is missing (a force that silently never fills a column is no
    different from one that says so), or the mapping lists the field under `not_supplied` and the
    force has no applicable case to show otherwise. A declared field that still has values (age
    derived from date of birth) is a partial gap, not structural. The CARA process fields count CARA
    cases only; `share_missing` is NaN for a force with no applicable case.
    """
    fields = list(PROFILED_FIELDS)
    is_cara = cases["arm"].eq("cara").to_numpy()
    every_case = np.ones(len(cases), dtype=bool)
    applicable = pd.DataFrame(
        {field: is_cara if field in CARA_PROCESS_FIELDS else every_case for field in fields}, index=cases.index
    )
    missing = cases[fields].isna() & applicable
    by_force = cases["force"].to_numpy()
    n_applicable = applicable.groupby(by_force).sum()
    share = (missing.groupby(by_force).sum() / n_applicable.where(n_applicable > 0)).astype(float)

    table = share.rename_axis(index="force", columns="field").stack(future_stack=True)
    table = table.rename("share_missing").reset_index()
    declared = np.array([field in _not_supplied(designs, force) for force, field in zip(table["force"], table["field"])])
    share_missing = table["share_missing"].to_numpy()
    table["structural"] = (share_missing == 1.0) | (declared & np.isnan(share_missing))
    table["field"] = pd.Categorical(table["field"], categories=fields, ordered=True)
    table = table.sort_values(["force", "field"], kind="stable")
    return table.astype({"field": str}).reset_index(drop=True)


def reasons(accounting: pd.DataFrame) -> pd.DataFrame:
    """Row-accounting reason columns (`ineligible:<reason>`, `quarantined:<reason>`) in long form.

    A force whose accounting has no column for a reason excluded no row for it (n = 0). Raises when
    a category's reasons do not add up to its total: then the report's exclusion table would not
    reconcile with the rows each force sent.
    """
    reason_columns = [c for c in accounting.columns if c.split(":", 1)[0] in REASON_CATEGORIES and ":" in c]
    long = accounting.melt(id_vars="force", value_vars=reason_columns, var_name="column", value_name="n")
    long[["category", "reason"]] = long["column"].str.split(":", n=1, expand=True)
    long["n"] = long["n"].fillna(0).astype(int)

    sums = long.pivot_table(index="force", columns="category", values="n", aggfunc="sum")
    sums = sums.reindex(columns=list(REASON_CATEGORIES), fill_value=0).fillna(0)
    totals = accounting.set_index("force")[list(REASON_CATEGORIES)].reindex(sums.index)
    mismatched = sums.ne(totals).any(axis=1)
    if mismatched.any():
        raise ValueError(
            "Row accounting reasons do not sum to the ineligible/quarantined totals for forces "
            f"{sorted(sums.index[mismatched])}: each excluded row must be counted under exactly one reason."
        )
    long = long[["force", "category", "reason", "n"]]
    return long.sort_values(["force", "category", "reason"], kind="stable").reset_index(drop=True)


def followup_coverage(cases: pd.DataFrame, full_followup_days: int) -> pd.DataFrame:
    """Per force and arm: cases, share with the full follow-up window, median follow-up in days."""
    full = cases["followup_days"].ge(full_followup_days).rename("full")
    grouped = pd.concat([cases[["force", "arm", "followup_days"]], full], axis=1).groupby(["force", "arm"])
    table = grouped.agg(
        n_cases=("followup_days", "size"),
        share_full_followup=("full", "mean"),
        median_followup_days=("followup_days", "median"),
    )
    return table.reset_index()


def cohort_sizes(cases: pd.DataFrame) -> pd.DataFrame:
    """Cases per force, calendar year of the index offence and arm (0 where an arm has none that year)."""
    counts = cases.groupby(["force", "period", "arm"]).size().unstack("arm", fill_value=0)
    counts = counts.reindex(columns=list(ARMS), fill_value=0)
    table = counts.stack().rename("n_cases").reset_index()
    return table[["force", "period", "arm", "n_cases"]].astype({"period": int, "n_cases": int})


def standardised_mean_difference(cara_mean, comparison_mean, cara_var, comparison_var):
    """(mean_cara - mean_comparison) / sqrt((var_cara + var_comparison) / 2), Austin (2009).

    For a category's proportion p the variance is p(1 - p). Equal means with zero spread give 0 (no
    imbalance), not NaN; a mean that cannot be computed (an arm with no observed value) gives NaN.
    """
    difference = np.asarray(cara_mean, dtype=float) - np.asarray(comparison_mean, dtype=float)
    pooled_sd = np.sqrt((np.asarray(cara_var, dtype=float) + np.asarray(comparison_var, dtype=float)) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        smd = difference / pooled_sd
    return np.where((difference == 0) & (pooled_sd == 0), 0.0, np.where(pooled_sd == 0, np.nan, smd))


def _numeric_balance(cases: pd.DataFrame, covariate: str) -> pd.DataFrame:
    stats = cases.groupby(["force", "arm"], observed=True)[covariate].agg(["mean", "var"]).unstack("arm")
    stats = stats.reindex(columns=pd.MultiIndex.from_product([["mean", "var"], ARMS]))
    table = pd.DataFrame(
        {
            "cara_mean": stats[("mean", "cara")],
            "comparison_mean": stats[("mean", "comparison")],
            "smd": standardised_mean_difference(
                stats[("mean", "cara")], stats[("mean", "comparison")], stats[("var", "cara")], stats[("var", "comparison")]
            ),
        }
    )
    return table.assign(level=pd.NA)


def _as_levels(values: pd.Series) -> pd.Series:
    """A covariate as categorical levels; booleans become the levels "true" and "false"."""
    levels = values.astype("category")
    if pd.api.types.is_bool_dtype(values.dtype):
        levels = levels.cat.rename_categories({True: "true", False: "false"})
    return levels


def _categorical_balance(cases: pd.DataFrame, covariate: str) -> pd.DataFrame:
    frame = pd.concat([cases[["force", "arm"]], cases[covariate].rename("level")], axis=1)
    counts = frame.groupby(["force", "arm", "level"], observed=True).size()
    levels = sorted(counts.index.get_level_values("level").unique())
    counts = counts.unstack(["arm", "level"], fill_value=0)
    # Every force keeps every level; a force that never records the covariate gets NaN shares.
    counts = counts.reindex(index=pd.unique(cases["force"]), columns=pd.MultiIndex.from_product([ARMS, levels]),
                            fill_value=0)
    if not levels:  # no case of any force records the covariate: nothing to compare
        empty = pd.MultiIndex.from_arrays([[], []], names=["force", "level"])
        return pd.DataFrame({"cara_mean": [], "comparison_mean": [], "smd": []}, index=empty).reset_index("level")
    # cases with the covariate observed, per arm (an arm without any observed value keeps a column of 0)
    observed = counts.T.groupby(level=0).sum().T.reindex(columns=ARMS, fill_value=0)
    shares = {arm: counts[arm].div(observed[arm].where(observed[arm] > 0), axis=0) for arm in ARMS}
    cara = shares["cara"].stack(future_stack=True)
    comparison = shares["comparison"].stack(future_stack=True)
    table = pd.DataFrame(
        {
            "cara_mean": cara,
            "comparison_mean": comparison,
            "smd": standardised_mean_difference(cara, comparison, cara * (1 - cara), comparison * (1 - comparison)),
        }
    )
    return table.rename_axis(index=["force", "level"]).reset_index("level")


def case_mix(cases: pd.DataFrame) -> pd.DataFrame:
    """Case mix by force and arm with standardised mean differences, observed values only.

    Numeric covariates give one row (level empty): means and the SMD with the pooled SD. Categorical
    and boolean covariates give one row per level seen anywhere: the level's share among cases with
    the covariate observed, and the SMD of that proportion. The pooled rows (force "all") pool cases,
    not force summaries.
    """
    columns = ["force", "covariate", "level", "cara_mean", "comparison_mean", "smd"]
    # A covariate no force records has no case mix to show (and no rows); offence_type is always recorded.
    numeric = [c for c in NUMERIC_COVARIATES if cases[c].notna().any()]
    categorical = [c for c in CATEGORICAL_COVARIATES if cases[c].notna().any()]
    covariates = numeric + categorical
    # Categorical keys make the grouping cheap at national scale (a million cases).
    observed = cases[["force", "arm", *numeric]].astype({"force": "category", "arm": "category"})
    observed = observed.assign(**{covariate: _as_levels(cases[covariate]) for covariate in categorical})
    parts = []
    for frame in (observed, observed.assign(force=pd.Categorical([POOLED] * len(observed)))):
        for covariate in numeric:
            parts.append(_numeric_balance(frame, covariate).assign(covariate=covariate))
        for covariate in categorical:
            parts.append(_categorical_balance(frame, covariate).assign(covariate=covariate))
    table = pd.concat(parts).reset_index()
    table["force"] = pd.Categorical(table["force"], categories=_force_order(table["force"]), ordered=True)
    table["covariate"] = pd.Categorical(table["covariate"], categories=covariates, ordered=True)
    table = table.sort_values(["force", "covariate", "level"], kind="stable").astype({"force": str, "covariate": str})
    return table[columns].reset_index(drop=True)


def process_measures(cases: pd.DataFrame, designs: Mapping[str, ForceDesign]) -> pd.DataFrame:
    """Victim contact and consultation among CARA cases, as observed and never imputed.

    Each share is over the CARA cases where that measure is recorded; `n_recorded` counts CARA cases
    with either measure recorded. A force that declares the field `not_supplied`, or records it for
    no CARA case, shows "not recorded": a zero would claim victims were never contacted.
    """
    cara = cases.loc[cases["arm"].eq("cara"), ["force", *PROCESS_MEASURES]]
    forces = _force_order(cases["force"].unique())
    grouped = cara.groupby("force")
    recorded = cara[list(PROCESS_MEASURES)].notna().groupby(cara["force"]).sum().reindex(forces, fill_value=0)
    positive = grouped[list(PROCESS_MEASURES)].sum().reindex(forces, fill_value=0)
    table = pd.DataFrame(index=pd.Index(forces, name="force"))
    table["n_cara"] = grouped.size().reindex(forces, fill_value=0)
    for measure in PROCESS_MEASURES:
        declared = pd.Series([measure in _not_supplied(designs, f) for f in forces], index=forces)
        share = (positive[measure] / recorded[measure]).astype(object)
        table[f"{measure}_share"] = share.where(recorded[measure].gt(0) & ~declared, NOT_RECORDED)
    either = cara[list(PROCESS_MEASURES)].notna().any(axis=1)
    table["n_recorded"] = either.groupby(cara["force"]).sum().reindex(forces, fill_value=0)
    return table.reset_index().astype({"n_cara": int, "n_recorded": int})
