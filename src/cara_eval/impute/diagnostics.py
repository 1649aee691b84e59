"""Missingness diagnostics per force and field: how much, structural or sporadic, patterns, and what predicts it.

The logistic models of the missingness indicator are fitted for sporadic missingness only: a field a force
never records carries no information about why it is missing.
"""

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from cara_eval.impute.chained import fixed_predictors

MISSINGNESS_COLUMNS = ["force", "field", "n_cases", "n_missing", "share_missing", "structural"]
PATTERN_COLUMNS = ["force", "pattern", "n_fields_missing", "n_cases", "share"]
MODEL_COLUMNS = ["field", "term", "coef", "se", "p_value", "n_cases", "n_missing", "status"]
WARNING_COLUMNS = ["scope", "force", "field", "share_missing", "threshold", "message"]


def missingness_by_force(cases: pd.DataFrame, fields: Sequence[str], structural: pd.DataFrame) -> pd.DataFrame:
    """Share missing for every force and field, with the structural flag."""
    structural_keys = set(zip(structural["force"], structural["field"]))
    rows = []
    for force, group in cases.groupby("force", sort=True, observed=True):
        for field in fields:
            n_missing = int(group[field].isna().sum())
            rows.append({
                "force": force, "field": field, "n_cases": len(group), "n_missing": n_missing,
                "share_missing": n_missing / len(group), "structural": (force, field) in structural_keys,
            })
    return pd.DataFrame(rows, columns=MISSINGNESS_COLUMNS)


def missingness_patterns(cases: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """Which fields go missing together: one row per force and pattern (`all` = every force pooled)."""
    indicator = cases[list(fields)].isna()
    pattern = pd.Series("", index=cases.index)
    for field in fields:
        pattern = pattern + np.where(indicator[field], f"+{field}", "")
    pattern = pattern.str.removeprefix("+").replace("", "none")
    frame = pd.DataFrame({"force": cases["force"].astype(str), "pattern": pattern,
                          "n_fields_missing": indicator.sum(axis=1)})
    pooled = frame.assign(force="all")
    counted = (
        pd.concat([frame, pooled])
        .groupby(["force", "pattern", "n_fields_missing"], sort=False)
        .size()
        .rename("n_cases")
        .reset_index()
    )
    counted["share"] = counted["n_cases"] / counted.groupby("force")["n_cases"].transform("sum")
    return counted.sort_values(["force", "n_cases", "pattern"], ascending=[True, False, True])[PATTERN_COLUMNS]


def missingness_models(cases: pd.DataFrame, fields: Sequence[str], structural: pd.DataFrame) -> pd.DataFrame:
    """Logistic model of each field's missingness indicator on always-observed covariates and force.

    Fitted on the forces where the field is sporadically missing (forces with none missing would only
    separate perfectly on their force dummy); a large coefficient on treatment or
    outcome information says complete-case analysis would be biased (missingness is not completely at random).
    """
    rows = []
    # The event indicator stands for the outcome here; the cumulative hazard would split its coefficient.
    predictors = fixed_predictors(cases.reset_index(drop=True)).drop(columns=["cumulative_hazard"])
    force = cases["force"].astype(str).reset_index(drop=True)
    for field in fields:
        structural_forces = set(structural.loc[structural["field"] == field, "force"])
        forces_with_missing = set(force[cases[field].isna().to_numpy()])
        keep = (force.isin(forces_with_missing) & ~force.isin(structural_forces)).to_numpy()
        missing = cases[field].isna().to_numpy()[keep]
        base = {"field": field, "n_cases": int(keep.sum()), "n_missing": int(missing.sum())}
        if missing.sum() < 5 or (~missing).sum() < 5:
            status = "no_sporadic_missingness" if missing.sum() == 0 else "too_few_missing_or_observed"
            rows.append({**base, "term": "", "coef": np.nan, "se": np.nan, "p_value": np.nan, "status": status})
            continue
        dummies = pd.get_dummies(force[keep], prefix="force", drop_first=True, dtype=float)
        x = pd.concat([predictors[keep], dummies], axis=1)
        x = sm.add_constant(x.loc[:, x.std() > 0], has_constant="add")
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the status column instead
            try:
                fit = sm.Logit(missing.astype(float), x).fit(disp=0, maxiter=100)
                status = "ok" if fit.mle_retvals["converged"] else "not_converged"
            except (PerfectSeparationWarning, np.linalg.LinAlgError) as error:
                rows.append({**base, "term": "", "coef": np.nan, "se": np.nan, "p_value": np.nan,
                             "status": f"failed: {type(error).__name__}"})
                continue
        for term in x.columns:
            rows.append({**base, "term": term, "coef": fit.params[term], "se": fit.bse[term],
                         "p_value": fit.pvalues[term], "status": status})
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def missingness_warnings(
    missingness: pd.DataFrame, share_incomplete: float, threshold: float, m: int, m_structural: int
) -> pd.DataFrame:
    """Fields missing above `threshold` (per force if sporadic, and over all forces) and too few imputations.

    The imputation-count check follows White, Royston & Wood (2011): m at least 100 x the share of incomplete
    cases; structurally missing fields add between-imputation variance, so they raise the floor to m_structural.
    """
    rows = []
    sporadic = missingness[~missingness["structural"] & (missingness["share_missing"] > threshold)]
    for row in sporadic.itertuples():
        rows.append({"scope": "force", "force": row.force, "field": row.field, "share_missing": row.share_missing,
                     "threshold": threshold,
                     "message": f"{row.field} is missing for {row.share_missing:.0%} of cases in {row.force}"})
    overall = missingness.groupby("field", sort=False)[["n_missing", "n_cases"]].sum()
    for field, row in overall.iterrows():
        share = row["n_missing"] / row["n_cases"]
        if share > threshold:
            rows.append({"scope": "all_forces", "force": "", "field": field, "share_missing": share,
                         "threshold": threshold,
                         "message": f"{field} is missing for {share:.0%} of cases over all forces"})
    recommended = int(np.ceil(100 * share_incomplete))
    if missingness["structural"].any():
        recommended = max(recommended, m_structural)
    if m < recommended:
        rows.append({"scope": "imputations", "force": "", "field": "", "share_missing": share_incomplete,
                     "threshold": threshold,
                     "message": f"m = {m} imputations; at least {recommended} recommended for publication "
                                f"({share_incomplete:.0%} of cases incomplete)"})
    return pd.DataFrame(rows, columns=WARNING_COLUMNS)


def unrecorded_warnings(fields: list[str], threshold: float) -> pd.DataFrame:
    """Configured fields no force records: not imputed (nothing to impute from), left out of the models."""
    rows = [{"scope": "all_forces", "force": "", "field": field, "share_missing": 1.0, "threshold": threshold,
             "message": f"{field} is recorded by no force: not imputed, and the models leave it out"}
            for field in fields]
    return pd.DataFrame(rows, columns=WARNING_COLUMNS)
