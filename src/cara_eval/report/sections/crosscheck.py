"""Cross-checks (report/_crosscheck.qmd): the Bayesian model beside the frequentist and propensity analyses."""

import numpy as np
import pandas as pd

from cara_eval.report.data import ReportData
from cara_eval.report.formatting import HEADLINE, effect_cell, effect_text, forces_text, interval_text, number

CROSSCHECK_METHODS = {
    "bayes_hierarchical": ("Bayesian hierarchical model (partial pooling)", "posterior (credible interval)"),
    "logit_glm": ("Logistic GLM, force fixed effects", "cluster-robust (CR1 by force, t(G-1))"),
    "lpm_cluster_robust": ("Linear probability model, force fixed effects", "cluster-robust (CR1 by force, t(G-1))"),
    "lpm_wild_cluster_bootstrap": ("Linear probability model, force fixed effects",
                                   "wild cluster bootstrap-t (test inversion)"),
    "poisson_glm": ("Poisson GLM of reoffence counts", "cluster-robust (CR1 by force)"),
    "propensity_att": ("Propensity-weighted comparison (ATT)", "percentile bootstrap"),
}


def _p_value(p: float) -> str:
    if pd.isna(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def crosscheck_rows(data: ReportData, method: str, scope: str, estimand: str) -> pd.DataFrame:
    """Rows of the cross-check estimates table (docs/contracts.md); force rows sorted, force empty for pooled."""
    table = data.table("crosscheck_estimates")
    rows = table[table["method"].eq(method) & table["scope"].eq(scope) & table["estimand"].eq(estimand)]
    return rows.assign(force=rows["force"].fillna("").astype(str)).sort_values("force")


def crosscheck_pooled(data: ReportData, method: str, estimand: str = HEADLINE) -> pd.Series:
    rows = crosscheck_rows(data, method, "pooled", estimand)
    if rows.empty:
        raise KeyError(f"crosscheck estimates.csv has no pooled row method={method!r}, estimand={estimand!r}.")
    return rows.iloc[0]


def crosscheck_pooled_table(data: ReportData) -> pd.DataFrame:
    """The pooled frequentist estimates laid out as the Bayesian estimand table, the model's own row first."""
    bayes = data.estimand(HEADLINE, "pooled")
    rows = [("bayes_hierarchical", HEADLINE, bayes["mean"], bayes["q05"], bayes["q95"], np.nan)]
    pooled = data.table("crosscheck_estimates")
    pooled = pooled[pooled["scope"].eq("pooled") & pooled["method"].isin(CROSSCHECK_METHODS)]
    rows += list(pooled[["method", "estimand", "estimate", "ci_low", "ci_high", "p_value"]].itertuples(index=False))
    return pd.DataFrame(
        {
            "Method": [CROSSCHECK_METHODS[r[0]][0] for r in rows],
            "Estimand": [r[1].replace("_", " ") for r in rows],
            "Estimate": [effect_text(r[2], r[1]) for r in rows],
            "90% interval": [interval_text(r[3], r[4], r[1]) for r in rows],
            "Interval": [CROSSCHECK_METHODS[r[0]][1] for r in rows],
            "p-value": [_p_value(r[5]) for r in rows],
        }
    )


def crosscheck_markdown(data: ReportData) -> str:
    """The pooled cross-check in words, and why the bootstrap interval is the one to trust with few forces."""
    bayes = data.estimand(HEADLINE, "pooled")
    logit = crosscheck_pooled(data, "logit_glm")
    robust = crosscheck_pooled(data, "lpm_cluster_robust")
    wild = crosscheck_pooled(data, "lpm_wild_cluster_bootstrap")
    n_forces = data.table("row_accounting")["force"].nunique()
    return (
        f"The pooled logistic regression estimates a change of {effect_text(logit['estimate'], HEADLINE)} reoffenders "
        f"per 100 CARA cases (90% confidence interval {interval_text(logit['ci_low'], logit['ci_high'], HEADLINE)}), "
        f"beside the Bayesian model's {effect_text(bayes['mean'], HEADLINE)} "
        f"({interval_text(bayes['q05'], bayes['q95'], HEADLINE)}). "
        "Cases within a force share its practice and its data, "
        f"so errors are clustered by force; but cluster-robust errors assume many clusters, and with {n_forces} forces "
        "they are too small and reject too often. The linear probability model, whose coefficient is the risk "
        "difference itself, is therefore also given a wild cluster bootstrap interval: "
        f"{interval_text(robust['ci_low'], robust['ci_high'], HEADLINE)} cluster-robust against "
        f"{interval_text(wild['ci_low'], wild['ci_high'], HEADLINE)} bootstrapped."
    )


def force_comparison_table(data: ReportData) -> pd.DataFrame:
    """Per force, partial pooling beside the analyses that use that force alone (all per 100 CARA cases, 90%)."""
    estimands = data.table("estimands")
    pooled = estimands[estimands["estimand"].eq(HEADLINE) & estimands["scope"].eq("force")].set_index("level")
    forest = data.table("forest")
    alone = forest[forest["method"].eq("no_pooling")].set_index("force")
    logit = crosscheck_rows(data, "logit_glm", "force", HEADLINE).set_index("force")
    propensity = crosscheck_rows(data, "propensity_att", "force", HEADLINE).set_index("force")

    def cells(table, mean, low, high):
        return [effect_cell(*table.loc[f, [mean, low, high]]) if f in table.index else "not estimable"
                for f in pooled.index]

    return pd.DataFrame(
        {
            "Force": [data.force_name(f) for f in pooled.index],
            "Partial pooling": cells(pooled, "mean", "q05", "q95"),
            "Bayesian, this force alone": cells(alone, "mean", "q05", "q95"),
            "Logistic GLM, this force alone": cells(logit, "estimate", "ci_low", "ci_high"),
            "Propensity-weighted (ATT)": cells(propensity, "estimate", "ci_low", "ci_high"),
        }
    )


def force_disagreement_markdown(data: ReportData) -> str:
    """How far the force-alone answers spread, against the partially pooled ones: the reason for pooling."""
    logit = crosscheck_rows(data, "logit_glm", "force", HEADLINE).dropna(subset=["estimate"])
    estimands = data.table("estimands")
    pooled = estimands[estimands["estimand"].eq(HEADLINE) & estimands["scope"].eq("force")]
    harmful = int((logit["estimate"] > 0).sum())
    direction = (
        f"{forces_text(harmful)} {'points' if harmful == 1 else 'point'} to more reoffending and the others to "
        "less, as in the economic strand's force-by-force analyses" if harmful else "all point to less reoffending"
    )
    return (
        "Analysed one at a time, the forces' logistic regressions range from "
        f"{effect_text(logit['estimate'].min(), HEADLINE)} "
        f"to {effect_text(logit['estimate'].max(), HEADLINE)} per 100 CARA cases: {direction}. The partially pooled "
        f"estimates range from {effect_text(pooled['mean'].min(), HEADLINE)} to "
        f"{effect_text(pooled['mean'].max(), HEADLINE)}. "
        "They disagree with the force-alone analyses, and that is the point of pooling: a force with few cases, or "
        "only historical controls, cannot tell its effect from noise on its own, so the hierarchical model draws each "
        "force towards the national average in proportion to how little its own data say."
    )


def its_table(data: ReportData) -> pd.DataFrame:
    """Segmented regression per force: the step and the change in slope at the CARA start, or why not estimable."""
    level = crosscheck_rows(data, "its_segmented", "force", "level_change_per100").set_index("force")
    slope = crosscheck_rows(data, "its_segmented", "force", "slope_change_per100_per_month").set_index("force")
    return pd.DataFrame(
        {
            "Force": [data.force_name(f) for f in level.index],
            "Step at CARA start, per 100 (90%)": [effect_cell(*level.loc[f, ["estimate", "ci_low", "ci_high"]])
                                                  for f in level.index],
            "Slope change, per 100 per month (90%)": [
                effect_cell(*slope.loc[f, ["estimate", "ci_low", "ci_high"]]) if f in slope.index else "not estimable"
                for f in level.index
            ],
            "Series": [str(note).split("; WLS")[0] for note in level["note"]],
        }
    )


def balance_table(data: ReportData) -> pd.DataFrame:
    """Case-mix balance per force before and after propensity weighting: worst |SMD| and levels above the limit."""
    balance = data.table("crosscheck_balance")
    limit = (data.config.get("quality") or {}).get("smd_threshold", 0.1)
    rows = []
    for force, group in balance.groupby("force", sort=True):
        before, after = group["smd_before"].abs(), group["smd_after"].abs()
        rows.append(
            {
                "Force": data.force_name(force),
                "Covariate levels": str(len(group)),
                "Largest |SMD| before": number(".2f")(before.max()),
                "Largest |SMD| after": number(".2f")(after.max()),
                f"Levels with |SMD| > {limit:g}, before": str(int((before > limit).sum())),
                f"Levels with |SMD| > {limit:g}, after": str(int((after > limit).sum())),
            }
        )
    return pd.DataFrame(rows)


def propensity_markdown(data: ReportData) -> str:
    """What propensity weighting can and cannot do against historical controls, with the pooled numbers."""
    propensity = crosscheck_pooled(data, "propensity_att")
    bayes = data.estimand(HEADLINE, "pooled")
    comparison = (
        "further from zero than" if abs(propensity["estimate"]) > abs(bayes["mean"]) else "close to or nearer zero than"
    )
    return (
        f"Weighted to the CARA cases' case mix within each force, the comparison gives "
        f"{effect_text(propensity['estimate'], HEADLINE)} per 100 CARA cases "
        f"({interval_text(propensity['ci_low'], propensity['ci_high'], HEADLINE)}), {comparison} the Bayesian model's "
        f"{effect_text(bayes['mean'], HEADLINE)}. "
        "Weighting balances the recorded characteristics (table below), but it "
        "cannot remove the secular trend: where the comparison group is historical, every comparison case comes from "
        "before CARA began, so any change over time in reoffending or in how it is recorded is credited to CARA. "
        "The regression, time-series and Bayesian analyses adjust for calendar time; this one does not."
    )
