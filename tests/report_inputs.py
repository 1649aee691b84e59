"""Small result tables in the contract layout (docs/contracts.md), written to a temporary directory for report tests.

Used until the real stages produce them on the tiny config; never written under results/. The numbers are chosen
so that some counts fall below the disclosure threshold and one fit fails its gate.
"""

import json
from pathlib import Path

import pandas as pd
import yaml
from matplotlib.figure import Figure

from cara_eval.ingest.mapping import load_mapping
from cara_eval.ingest.spec import build_data_specification
from cara_eval.model.gate import pooled_gate
from cara_eval.provenance.record import package_versions, sha256_file
from cara_eval.report.tilemap import draw_tile_map, load_tiles, partially_pooled_effects

REPO = Path(__file__).resolve().parents[1]
FORCE_MAPPINGS = REPO / "config" / "forces"

FORCES = ["hampshire", "norfolk", "west_yorkshire"]
DISPLAY = {"hampshire": "Hampshire", "norfolk": "Norfolk", "west_yorkshire": "West Yorkshire"}
ESTIMANDS = pd.DataFrame(
    [
        ("risk_difference_per100", "pooled", "", -4.3, 1.6, -7.1, -4.3, -1.6, 0.987, True),
        ("risk_difference_per100", "new_force", "", -4.0, 3.1, -9.4, -4.1, 1.2, 0.91, True),
        ("risk_ratio", "pooled", "", 0.81, 0.07, 0.70, 0.81, 0.93, 0.987, True),
        ("odds_ratio", "pooled", "", 0.77, 0.08, 0.64, 0.77, 0.91, 0.987, True),
        ("tau", "pooled", "", 0.14, 0.08, 0.03, 0.12, 0.3, None, True),
        ("risk_difference_per100", "force", "hampshire", -5.2, 1.9, -8.4, -5.2, -2.0, 0.994, True),
        ("risk_difference_per100", "force", "norfolk", -3.1, 2.5, -7.2, -3.1, 1.0, 0.89, True),
        ("risk_difference_per100", "force", "west_yorkshire", -4.4, 2.2, -8.0, -4.4, -0.8, 0.97, True),
        ("risk_difference_per100", "relationship", "together", -6.1, 2.0, -9.4, -6.1, -2.8, 0.998, True),
        ("risk_difference_per100", "relationship", "separated", -2.2, 2.1, -5.7, -2.2, 1.3, 0.84, True),
        ("pr_reduction_ge_10pct", "pooled", "", 0.62, None, None, None, None, None, True),
        ("hazard_ratio_att", "pooled", "", 0.84, 0.06, 0.75, 0.84, 0.94, 0.99, True),
        ("rmst_difference_days", "pooled", "", 7.9, 3.0, 3.1, 7.9, 12.8, None, True),
    ],
    columns=["estimand", "scope", "level", "mean", "sd", "q05", "q50", "q95", "prob_reduction", "gate_passed"],
)


def write_report_inputs(root: Path, estimands: pd.DataFrame = ESTIMANDS) -> dict:
    """Write every table the report reads under root; return the manifest pieces that point at them."""
    root = Path(root)
    paths = {}

    def save(name, relative, table):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        paths[name] = str(path)

    accounting = pd.DataFrame(
        {
            "force": FORCES,
            "rows_read": [212, 148, 125],
            "clean": [200, 120, 110],
            "ineligible": [12, 25, 12],
            "quarantined": [0, 3, 3],
            "ineligible:high_dash": [7, 14, 12],
            "ineligible:repeat_offender": [5, 11, 0],
            "quarantined:impossible_date": [0, 3, 1],
            "quarantined:duplicate_row": [0, 0, 2],
        }
    )
    save("row_accounting", "ingest/row_accounting.csv", accounting)
    fields = ["ethnicity", "prior_da_incidents", "victim_contacted", "dash_risk"]
    save(
        "completeness",
        "quality/completeness.csv",
        pd.DataFrame(
            [(f, field, share, structural) for f in FORCES for field, share, structural in zip(
                fields,
                [0.0, 0.0, 0.0, 0.0] if f == "hampshire" else [0.12, 0.05, 1.0 if f == "norfolk" else 0.3, 0.0],
                [False, False, f == "norfolk", False],
            )],
            columns=["force", "field", "share_missing", "structural"],
        ),
    )
    save(
        "followup_coverage",
        "quality/followup_coverage.csv",
        pd.DataFrame(
            [(f, arm, n, share, days) for f, arms in zip(FORCES, [(120, 80), (7, 113), (60, 50)])
             for arm, n, share, days in zip(["cara", "comparison"], arms, [1.0, 0.8], [365, 300])],
            columns=["force", "arm", "n_cases", "share_full_followup", "median_followup_days"],
        ),
    )
    save(
        "cohort_sizes",
        "quality/cohort_sizes.csv",
        pd.DataFrame(
            [("hampshire", 2014, "cara", 70), ("hampshire", 2015, "cara", 50), ("hampshire", 2012, "comparison", 80),
             ("norfolk", 2020, "cara", 7), ("norfolk", 2016, "comparison", 113),
             ("west_yorkshire", 2019, "cara", 60), ("west_yorkshire", 2017, "comparison", 50)],
            columns=["force", "period", "arm", "n_cases"],
        ),
    )
    save(
        "case_mix",
        "quality/case_mix.csv",
        pd.DataFrame(
            [(f, cov, level, cm, pm, smd) for f in [*FORCES, "all"] for cov, level, cm, pm, smd in [
                ("age", "", 34.2, 33.1, 0.09), ("sex", "male", 0.82, 0.80, 0.05), ("together_at_index", "True", 0.41, 0.30, 0.23)]],
            columns=["force", "covariate", "level", "cara_mean", "comparison_mean", "smd"],
        ),
    )
    save(
        "process_measures",
        "quality/process_measures.csv",
        pd.DataFrame(
            {
                "force": FORCES,
                "n_cara": [120, 7, 60],
                "victim_contacted_share": [0.92, 0.71, "not recorded"],
                "victim_consulted_share": [0.64, 0.57, "not recorded"],
                "n_recorded": [118, 7, 0],
            }
        ),
    )
    # The real specification (31 fields, long cells): the table that must split across PDF pages.
    save("data_specification", "spec/data_specification.csv",
         build_data_specification([load_mapping(path) for path in sorted(FORCE_MAPPINGS.glob("*.yaml"))]))
    save("estimands", "model/any_reoffence/pooled/estimands.csv", estimands)
    forest = [(f, m, mean, mean - 3.5 - (m == "no_pooling"), mean + 3.5 + (m == "no_pooling"), n)
              for f, n in zip(FORCES, [200, 120, 110]) for m, mean in [("no_pooling", -5.8), ("partial_pooling", -4.6)]]
    forest += [("all", "pooled", -4.3, -7.1, -1.6, 430), ("new", "new_force", -4.0, -9.4, 1.2, 0)]
    forest = pd.DataFrame(forest, columns=["force", "method", "mean", "q05", "q95", "n_cases"])
    save("forest", "model/any_reoffence/pooled/forest.csv", forest)
    save("terms", "model/any_reoffence/terms.csv", pd.DataFrame(
        [(f"force:{f}", True, "CARA and comparison cases") for f in FORCES]
        + [("tau", True, "3 forces: between-force SDs estimated"),
           ("covariate:female", False, "constant in every case (none female)")],
        columns=["term", "included", "reason"]))
    _save_crosscheck_and_costbenefit(save)
    _save_sensitivity(save)
    _save_planning(save)
    gates = []
    for dataset, passed in (("imp1", True), ("imp2", False)):
        path = root / f"model/any_reoffence/{dataset}/gate.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {"dataset": dataset, "parameter": ["mu_log_hr", "tau"], "r_hat": [1.002, 1.0 if passed else 1.08],
             "ess_bulk": [1500, 900 if passed else 120], "ess_tail": [1400, 800], "divergences": [0, 0 if passed else 3],
             "passed": [True, passed]}
        ).to_csv(path, index=False)
        gates.append(str(path))
    pooled = root / "model/any_reoffence/pooled/gate.csv"
    pooled_gate([pd.read_csv(path) for path in gates], {"min_ess_bulk": 400, "min_ess_tail": 400}).to_csv(pooled, index=False)
    gates.append(str(pooled))
    figure = Figure(figsize=(5, 3), dpi=80)
    figure.add_subplot().imshow([[0.0, 0.1], [0.3, 1.0]])
    (root / "quality").mkdir(parents=True, exist_ok=True)
    figure.savefig(root / "quality/completeness.png", metadata={"Software": None})
    force_map = root / "report/force_map.png"  # as rule report_force_map draws it
    force_map.parent.mkdir(parents=True, exist_ok=True)
    tiles = load_tiles(REPO / "config" / "force_tiles.csv")
    draw_tile_map(tiles, partially_pooled_effects(forest)).figure.savefig(force_map, metadata={"Software": None})
    provenance = root / "provenance/run.json"
    provenance.parent.mkdir(parents=True, exist_ok=True)
    provenance.write_text(json.dumps({
        "run_date": "2026-11-26T23:00:00+00:00", "git": {"commit": "0" * 40, "dirty": False},
        "config": yaml.safe_load((REPO / "config" / "config.yaml").read_text()), "versions": package_versions(),
        "inputs": [{"path": "data/raw/norfolk/norfolk_cases.xlsx", "kind": "raw", "bytes": 10, "sha256": "a" * 64},
                   *({"path": f"config/forces/{m.name}", "kind": "mapping", "bytes": m.stat().st_size,
                      "sha256": sha256_file(m)} for m in sorted(FORCE_MAPPINGS.glob("*.yaml")))],
    }))
    return {
        "tables": paths,
        "gates": gates,
        "figures": {"completeness": str(root / "quality/completeness.png"), "force_map": str(force_map)},
        "provenance": str(provenance),
        "forces": {f: {"display_name": DISPLAY[f], "design": {"cara_start": "2019-04-01", "extract_date": "2024-03-31",
                                                               "comparison": "historical"}} for f in FORCES},
        "config": {"outcomes": {"followup_days": 365}, "eligibility": {"min_age": 18}, "model": {"estimand": "ATT"},
                   "planning": PLANNING},
        "report": {"primary_outcome": "any_reoffence", "disclosure_threshold": 10, "renderer": "fallback"},
        "previous": {},
    }


def _save_crosscheck_and_costbenefit(save) -> None:
    """Cross-check estimates and balance in the contract layout; cost-benefit tables from the stage's own functions."""
    import numpy as np

    from cara_eval.costbenefit import economics as costbenefit

    note = "force fixed effects, linear calendar year, covariates"
    rows = [("logit_glm", "pooled", "", "odds_ratio", 0.79, 0.70, 0.89, 0.004, note),
            ("logit_glm", "pooled", "", "risk_difference_per100", -4.6, -6.9, -2.3, 0.004, note),
            ("lpm_cluster_robust", "pooled", "", "risk_difference_per100", -4.4, -6.1, -2.7, 0.01, note),
            ("lpm_wild_cluster_bootstrap", "pooled", "", "risk_difference_per100", -4.4, -8.8, 0.9, 0.25, note),
            ("poisson_glm", "pooled", "", "rate_ratio", 0.81, 0.72, 0.91, 0.006, note),
            ("propensity_att", "pooled", "", "risk_difference_per100", -9.8, -12.0, -7.5, 0.0, "case mix only")]
    for force, rd_alone in zip(FORCES, [-7.5, 2.4, -6.1]):
        rows += [("logit_glm", "force", force, "risk_difference_per100", rd_alone, rd_alone - 4, rd_alone + 4, 0.1, ""),
                 ("propensity_att", "force", force, "risk_difference_per100", rd_alone - 3, rd_alone - 6, rd_alone, 0.05, ""),
                 ("its_segmented", "force", force, "level_change_per100", rd_alone, rd_alone - 5, rd_alone + 5, 0.2,
                  "40 months before, 30 after the CARA start 2019-04; WLS by cases per month"),
                 ("its_segmented", "force", force, "slope_change_per100_per_month", 0.05, -0.2, 0.3, 0.7,
                  "40 months before, 30 after the CARA start 2019-04; WLS by cases per month")]
    save("crosscheck_estimates", "crosscheck/estimates.csv", pd.DataFrame(
        rows, columns=["method", "scope", "force", "estimand", "estimate", "ci_low", "ci_high", "p_value", "note"]))
    save("crosscheck_balance", "crosscheck/balance.csv", pd.DataFrame(
        [(f, "age", "", 36.0, 33.0, 35.8, 0.31, 0.02) for f in FORCES]
        + [(f, "sex", "male", 0.80, 0.84, 0.81, -0.12, -0.03) for f in FORCES],
        columns=["force", "covariate", "level", "cara_mean", "comparison_mean_before", "comparison_mean_after",
                 "smd_before", "smd_after"]))

    rng = np.random.default_rng(1)
    draws = [pd.DataFrame({"draw": range(400), "scope": "pooled", "force": None, "rd_per100": rng.normal(-4.3, 1.6, 400),
                           "n_cara": 187})]
    draws += [pd.DataFrame({"draw": range(400), "scope": "force", "force": f, "rd_per100": rng.normal(mean, 2.0, 400),
                            "n_cara": n}) for f, mean, n in zip(FORCES, [-5.2, -1.0, -4.4], [120, 7, 60])]
    draws = pd.concat(draws, ignore_index=True)
    unit_costs = {"cara_per_participant": {"value": 500, "source": "placeholder", "illustrative": True},
                  "da_offence": {"value": 34015, "source": "Home Office 2019", "illustrative": True}}
    save("costbenefit_summary", "costbenefit/summary.csv", costbenefit.summarise(draws, 500, 34015))
    save("costbenefit_ceac", "costbenefit/ceac.csv",
         costbenefit.acceptability_curve(draws, 500, np.arange(0, 60001, 1000)))
    save("costbenefit_unit_costs", "costbenefit/unit_costs.csv", costbenefit.unit_cost_table(unit_costs))


PLANNING = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["planning"]


def _save_planning(save) -> None:
    """Planning tables from the stage's own functions on synthetic draws; Norfolk's CARA cases a year are few."""
    import numpy as np
    from planning_fits import linear_accrual, synthetic_fits

    from cara_eval.planning import conclusive_table, precision_table

    priors = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["model"]["priors"]
    partial, no_pooling = synthetic_fits(FORCES, [-0.25, -0.05, -0.15], posterior_sd=[0.08, 0.15, 0.1],
                                         data_sd=[0.1, 0.4, 0.15])
    months = np.arange(PLANNING["max_months"] + 1)
    accrual = pd.concat([linear_accrual([force], months, events, events / 40, cases_per_month=per_month)
                         for force, events, per_month in zip(FORCES, [150.0, 8.0, 90.0], [10.0, 0.5, 5.0])])
    precision = precision_table(partial, no_pooling, accrual, priors, 100, 100, seed=1)
    save("planning_precision", "planning/precision.csv", precision)
    save("planning_conclusive", "planning/months_to_conclusive.csv",
         conclusive_table(precision, PLANNING["assurance_target"]))


def _save_sensitivity(save) -> None:
    """The default sensitivity set (complete cases, MNAR grid) in the contract layout."""
    variants = [("multiple_imputation", -4.3, True), ("complete_case", -4.0, True), ("mnar_delta_0", -4.3, True),
                ("mnar_delta_1", -4.1, False)]
    rows = []
    for variant, mean, passed in variants:
        rows += [("missing_data", variant, "risk_difference_per100", mean, mean - 2.8, mean + 2.7, 0.99, passed, ""),
                 ("missing_data", variant, "tau", 0.14, 0.03, 0.3, None, passed, ""),
                 ("missing_data", variant, "pr_any_reduction", 0.99, None, None, None, passed, "")]
    save("sensitivity_summary", "sensitivity/summary.csv", pd.DataFrame(
        rows, columns=["analysis", "variant", "estimand", "mean", "q05", "q95", "prob_reduction", "gate_passed", "note"]))
    save("sensitivity_tipping_point", "sensitivity/tipping_point.csv", pd.DataFrame(
        [("rd_q95_reaches_0", 0.0, "positive", None, -1.6, "0..1", 0.2, "not crossed within the grid"),
         ("pr_any_reduction_crosses", 0.9, "positive", None, 0.99, "0..1", 0.2, "not crossed within the grid")],
        columns=["criterion", "threshold", "side", "tipping_delta", "baseline_value", "grid", "max_shift_rd_mean",
                 "note"]))
