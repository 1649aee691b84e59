"""The naive before/after estimate and the synthetic-truth check it is reported beside.

The naive estimate is what a force-by-force analysis without a time trend or case mix would say:
the crude 12-month reoffence risk of CARA cases minus that of historical comparison cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Truth-file measure -> estimand of the same fit that estimates it, per truth outcome. Only ATT-averaged
# measures: the truth's log HR averages completers and non-completers, unlike the model's mu_log_hr.
CHECKED_ESTIMANDS = {
    "any_reoffence": {name: name for name in ("risk_difference_per100", "risk_ratio", "odds_ratio")},
    "time_to_first": {"log_hr": "log_hr_att", "hazard_ratio": "hazard_ratio_att"},
    "reoffence_count": {name: name for name in ("rate_ratio", "log_rate_ratio", "difference_per100")},
    "harm": {name: name for name in ("ratio", "difference_per100")},
}


def naive_before_after(cases: pd.DataFrame) -> pd.DataFrame:
    """Crude risk difference per 100 (CARA vs historical comparison), pooled and per force.

    Uses cases whose 12-month status is known: full 365-day follow-up, or a reoffence seen earlier.
    """
    known = cases[(cases["followup_days"] >= 365) | cases["any_reoffence"].astype(bool)]
    cara = known["arm"] == "cara"
    historical = (known["arm"] == "comparison") & (known["comparison_type"] == "historical")
    reoffended = known["any_reoffence"].astype(bool)

    def difference(mask):
        return 100 * (reoffended[mask & cara].mean() - reoffended[mask & historical].mean())

    rows = [{"scope": "pooled", "level": "", "estimate": difference(np.ones(len(known), bool))}]
    rows += [{"scope": "force", "level": force, "estimate": difference((known["force"] == force).to_numpy())}
             for force in sorted(known["force"].unique())]
    return pd.DataFrame(rows)


def truth_check(estimands: pd.DataFrame, naive: pd.DataFrame | None, truth: dict, outcome: str) -> pd.DataFrame:
    """Model estimate (90% interval) and naive estimate beside the synthetic truth, with bias and coverage.

    Columns: estimand, scope, level, method, truth, estimate, q05, q95, covered, bias; `outcome` is a key of
    CHECKED_ESTIMANDS (time_to_first is checked on the any_reoffence fit's estimands); `naive` None: no
    naive before/after rows (it is defined for the 12-month risk only).
    """
    checked = CHECKED_ESTIMANDS[outcome]
    truths = truth["outcomes"][outcome]
    wanted = [("pooled", "", truths["pooled"])]
    wanted += [("force", force, values) for force, values in truths.get("by_force", {}).items()]
    wanted += [("relationship", level, values) for level, values in truths.get("by_relationship", {}).items()]
    indexed = estimands.fillna({"level": ""}).set_index(["estimand", "scope", "level"])
    rows = []
    for scope, level, values in wanted:
        for measure, true_value in values.items():
            estimand = checked.get(measure)
            key = (estimand, scope, level)
            if estimand is None or key not in indexed.index:
                continue
            row = indexed.loc[key]
            rows.append({"estimand": estimand, "scope": scope, "level": level, "method": "bayes_hierarchical",
                         "truth": true_value, "estimate": row["mean"], "q05": row["q05"], "q95": row["q95"],
                         "covered": bool(row["q05"] <= true_value <= row["q95"]),
                         "bias": row["mean"] - true_value})
            if estimand == "risk_difference_per100" and naive is not None:
                crude = naive[(naive["scope"] == scope) & (naive["level"] == level)]
                if len(crude):
                    estimate = float(crude["estimate"].iloc[0])
                    rows.append({"estimand": estimand, "scope": scope, "level": level, "method": "naive_before_after",
                                 "truth": true_value, "estimate": estimate, "q05": np.nan, "q95": np.nan,
                                 "covered": np.nan, "bias": estimate - true_value})
    return pd.DataFrame(rows)
