"""Segmented-regression interrupted time series of monthly DA reoffence rates per force.

Why: the evaluation protocol (Morgan et al. 2024) names ITS because a before/after comparison mistakes the
secular trend in reoffending and recording for an effect of CARA. The series covers every eligible case in
the force (CARA and comparison alike), so the level change is the effect of introducing CARA on the
eligible population, diluted by the share who actually got CARA.
"""

import numpy as np
import pandas as pd
import statsmodels.api as sm

from cara_eval.crosscheck.regression import ESTIMATE_COLUMNS, estimate_row, full_followup, wald_interval

ITS_TERMS = {"level_change_per100": "post", "slope_change_per100_per_month": "months_since_start"}


def monthly_rates(cases: pd.DataFrame, followup_days: int, min_cases: int) -> pd.DataFrame:
    """Share reoffending per 100 eligible cases by force and month of index offence, full follow-up only.

    Months with fewer than ``min_cases`` cases are dropped: their rates are mostly noise.
    """
    observed = full_followup(cases, followup_days)
    series = (observed.assign(month=observed["index_date"].dt.to_period("M"),
                              reoffended=observed["any_reoffence"].astype(float))
              .groupby(["force", "month"], observed=True)
              .agg(n_cases=("reoffended", "size"), n_reoffended=("reoffended", "sum"))
              .reset_index())
    series["rate_per100"] = 100 * series["n_reoffended"] / series["n_cases"]
    return series.loc[series["n_cases"] >= min_cases].reset_index(drop=True)


def segmented_regression(series: pd.DataFrame, cara_start: pd.Timestamp, lags: int):
    """WLS of the monthly rate on time, a post-start step and a post-start slope; Newey-West (HAC) errors.

    Weights are the month's case count, because a rate over more cases is less noisy.
    """
    start = pd.Period(cara_start, freq="M")
    month_index = np.array([(month - series["month"].min()).n for month in series["month"]], dtype=float)
    start_index = float((start - series["month"].min()).n)
    post = (series["month"] >= start).to_numpy().astype(float)
    terms = pd.DataFrame({"const": 1.0, "month": month_index, "post": post,
                          "months_since_start": post * (month_index - start_index)})
    return sm.WLS(series["rate_per100"].to_numpy(), terms, weights=series["n_cases"].to_numpy()).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags})


def its_estimates(series: pd.DataFrame, cara_starts: dict, level: float, lags: int,
                  min_months: int) -> pd.DataFrame:
    """Level and slope change at each force's CARA start, in ``ESTIMATE_COLUMNS`` layout.

    Every force in ``cara_starts`` gets rows; one with too short a series on either side says why.
    """
    rows = []
    for force in sorted(cara_starts):
        force_series = series.loc[series["force"] == force]
        start = pd.Period(pd.Timestamp(cara_starts[force]), freq="M")
        n_pre = int((force_series["month"] < start).sum())
        n_post = len(force_series) - n_pre
        note = (f"{n_pre} months before, {n_post} after the CARA start {start}; WLS by cases per month, "
                f"Newey-West errors ({lags} lags); all eligible cases with full follow-up (intention to treat)")
        if min(n_pre, n_post) < min_months:
            rows += [estimate_row("its_segmented", "force", force, estimand, np.nan, np.nan, np.nan, np.nan,
                                  f"not estimable: fewer than {min_months} months on one side; {note}")
                     for estimand in ITS_TERMS]
            continue
        result = segmented_regression(force_series.reset_index(drop=True), start.to_timestamp(), lags)
        for estimand, term in ITS_TERMS.items():
            estimate, se = result.params[term], result.bse[term]
            rows.append(estimate_row("its_segmented", "force", force, estimand, estimate,
                                     *wald_interval(estimate, se, level, None), note))
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
