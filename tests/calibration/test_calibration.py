"""Calibration target (`snakemake calibration`) and the report sections for cross-checks, cost-benefit and calibration."""

import html
import re

import numpy as np
import pandas as pd
import pytest
from conftest import deep_merge, make_workdir, run_snakemake, tiny_config

from cara_eval.calibration.replicates import COVERAGE_COLUMNS, REPLICATE_COLUMNS, coverage_table, simulate_replicate
from cara_eval.common.disclosure import find_small_counts
from cara_eval.model.naive import naive_before_after
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import percent
from cara_eval.report.sections import calibration as calibration_section
from cara_eval.report.sections.costbenefit import _money, _pounds_interval

TINY_CALIBRATION = {
    "replicates": 2,
    "n_cases": 300,
    "forces": ["hampshire", "norfolk", "west_yorkshire"],
    "trend_shapes": ["linear", "nonlinear"],
    "fit": {"chains": 2, "draws": 60, "tune": 60, "sampler": "pymc"},
}


def _replicates(rows):
    """Replicate rows in the contract layout from (replicate, shape, method, scope, level, truth, estimate, q25,
    q75, q05, q95) tuples; coverage flags computed the way run_replicate computes them."""
    table = pd.DataFrame(rows, columns=["replicate", "trend_shape", "method", "scope", "level", "truth", "estimate",
                                        "q25", "q75", "q05", "q95"])
    table["covered_50"] = ((table["q25"] <= table["truth"]) & (table["truth"] <= table["q75"])).where(table["q05"].notna())
    table["covered_90"] = ((table["q05"] <= table["truth"]) & (table["truth"] <= table["q95"])).where(table["q05"].notna())
    table["bias"] = table["estimate"] - table["truth"]
    table["seconds"] = table["replicate"].map({0: 100.0, 1: 140.0})
    return table.assign(estimand="risk_difference_per100", divergences=0, gate_passed=True)[REPLICATE_COLUMNS]


def test_coverage_counts_intervals_that_hold_the_truth_per_method_scope_and_trend():
    replicates = _replicates([
        (0, "linear", "bayes_hierarchical", "pooled", "", -5.0, -4.0, -4.5, -3.5, -7.0, -1.0),  # 90 only
        (0, "linear", "bayes_hierarchical", "force", "a", -5.0, -5.0, -6.0, -4.0, -8.0, -2.0),  # both
        (0, "linear", "bayes_hierarchical", "force", "b", 1.0, -5.0, -6.0, -4.0, -8.0, -2.0),   # neither
        (0, "linear", "naive_before_after", "pooled", "", -5.0, -9.0, np.nan, np.nan, np.nan, np.nan),
        (1, "nonlinear", "bayes_hierarchical", "pooled", "", -5.0, -5.5, -6.0, -4.0, -8.0, -3.0),  # both
        (1, "nonlinear", "bayes_hierarchical", "force", "a", -5.0, -3.0, -4.0, -2.0, -6.0, -1.0),  # 90 only
        (1, "nonlinear", "bayes_hierarchical", "force", "b", -2.0, -2.0, -3.0, -1.0, -4.0, 0.0),   # both
        (1, "nonlinear", "naive_before_after", "pooled", "", -5.0, -7.0, np.nan, np.nan, np.nan, np.nan),
    ])
    coverage = coverage_table(replicates).set_index(["method", "scope", "trend_shape"])
    assert list(coverage.reset_index().columns) == COVERAGE_COLUMNS
    pooled = coverage.loc[("bayes_hierarchical", "pooled", "all")]
    assert (pooled["n_replicates"], pooled["coverage_50"], pooled["coverage_90"]) == (2, 0.5, 1.0)
    assert pooled["mean_bias"] == pytest.approx((1.0 - 0.5) / 2)
    assert pooled["rmse"] == pytest.approx(np.sqrt((1.0**2 + 0.5**2) / 2))
    assert pooled["mean_width_90"] == pytest.approx((6.0 + 5.0) / 2)
    assert pooled["seconds_per_replicate"] == pytest.approx(120.0)
    force = coverage.loc[("bayes_hierarchical", "force", "all")]
    assert (force["n_estimates"], force["coverage_50"], force["coverage_90"]) == (4, 0.5, 0.75)
    linear = coverage.loc[("bayes_hierarchical", "force", "linear")]
    assert (linear["n_replicates"], linear["coverage_90"], linear["seconds_per_replicate"]) == (1, 0.5, 100.0)
    naive = coverage.loc[("naive_before_after", "pooled", "all")]
    assert np.isnan(naive["coverage_90"]) and naive["mean_bias"] == pytest.approx(-3.0)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """`snakemake calibration` on two tiny replicates (one per trend shape) in a fresh workflow directory."""
    config = deep_merge(tiny_config(), {"calibration": TINY_CALIBRATION})
    workdir = make_workdir(tmp_path_factory.mktemp("calibration") / "work", config)
    dry_default = run_snakemake(workdir, "-n")
    run_snakemake(workdir, "calibration")
    return workdir, config, dry_default


@pytest.mark.slow
def test_calibration_target_fits_each_replicate_against_its_own_truth(calibrated):
    workdir, config, dry_default = calibrated
    assert "calibration_replicate" not in dry_default.stdout  # not part of the default run
    for replicate, shape in [(0, "linear"), (1, "nonlinear")]:
        table = pd.read_csv(workdir / f"results/calibration/replicates/{replicate}.csv")
        assert list(table.columns) == REPLICATE_COLUMNS and set(table["trend_shape"]) == {shape}
        # The truth and the naive estimate are those of the replicate's own simulated population.
        cases, truth, _ = simulate_replicate(replicate, config["calibration"], config["seed"])
        truths = truth["outcomes"]["any_reoffence"]
        bayes = table[table["method"].eq("bayes_hierarchical")].fillna({"level": ""}).set_index(["scope", "level"])
        assert bayes.loc[("pooled", ""), "truth"] == pytest.approx(truths["pooled"]["risk_difference_per100"])
        for force in TINY_CALIBRATION["forces"]:
            assert bayes.loc[("force", force), "truth"] == pytest.approx(
                truths["by_force"][force]["risk_difference_per100"])
        naive = table[table["method"].eq("naive_before_after")].fillna({"level": ""}).set_index(["scope", "level"])
        expected = naive_before_after(cases).set_index(["scope", "level"])["estimate"].dropna()
        assert naive["estimate"].to_dict() == pytest.approx(expected.to_dict())
        # Intervals are ordered and the flags say whether they hold the truth.
        fitted = table[table["method"].ne("naive_before_after")]
        assert set(fitted["method"]) == {"bayes_hierarchical", "no_pooling"} and len(fitted) == 1 + 2 * 3
        assert ((fitted["q05"] <= fitted["q25"]) & (fitted["q25"] <= fitted["q75"]) & (fitted["q75"] <= fitted["q95"])).all()
        held = (fitted["q05"] <= fitted["truth"]) & (fitted["truth"] <= fitted["q95"])
        assert fitted["covered_90"].astype(bool).tolist() == held.tolist()
    assert (workdir / "logs/calibration_replicate/0.log").is_file()
    assert (workdir / "benchmarks/calibration_replicate/1.tsv").is_file()


@pytest.mark.slow
def test_coverage_table_summarises_the_replicate_files(calibrated):
    workdir, _, _ = calibrated
    coverage = pd.read_csv(workdir / "results/calibration/coverage.csv")
    assert list(coverage.columns) == COVERAGE_COLUMNS
    shares = coverage[["coverage_50", "coverage_90"]].dropna().to_numpy()
    assert shares.size and ((shares >= 0) & (shares <= 1)).all()
    replicates = pd.concat([pd.read_csv(workdir / f"results/calibration/replicates/{r}.csv") for r in (0, 1)])
    overall = coverage[coverage["trend_shape"].eq("all")].set_index(["method", "scope"])
    for (method, scope), group in replicates[replicates["method"].ne("naive_before_after")].groupby(["method", "scope"]):
        assert overall.loc[(method, scope), "coverage_90"] == pytest.approx(group["covered_90"].astype(float).mean())
        assert overall.loc[(method, scope), "n_replicates"] == 2
    assert set(coverage["trend_shape"]) == {"linear", "nonlinear", "all"}
    assert (workdir / "results/calibration/coverage.png").read_bytes().startswith(b"\x89PNG")

    # The report's appendix quotes this run's numbers.
    data = ReportData({"tables": {}, "report": {"disclosure_threshold": 10},
                       "config": {"calibration": TINY_CALIBRATION,
                                  "calibration_run": {"coverage": str(workdir / "results/calibration/coverage.csv")}}})
    text = calibration_section.calibration_markdown(data)
    pooled = overall.loc[("bayes_hierarchical", "pooled")]
    assert "From the last calibration run (2 replicate datasets of 300 simulated cases" in text
    assert f"covered the true pooled effect in {percent(pooled['coverage_90'])} of replicates" in text
    assert len(calibration_section.calibration_table(data)) == len(coverage)


def _per100(value: float) -> str:
    """A risk difference per 100 as the report prints it: signed, one decimal, never "-0.0"."""
    return f"{round(value, 1) + 0.0:+.1f}"


def _text(page: str) -> str:
    """Visible text of the HTML, one space between words, pandoc's typographic apostrophes made plain."""
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).replace("\u2019", "'").split())
    return re.sub(r" ([,.;])", r"\1", text)


@pytest.mark.slow
def test_report_from_a_real_run_states_the_crosscheck_and_costbenefit_tables(tiny_run):
    page = (tiny_run / "results/report/cara_report.html").read_text()
    text = _text(page)
    estimates = pd.read_csv(tiny_run / "results/crosscheck/estimates.csv")
    pooled = estimates[estimates["scope"].eq("pooled") & estimates["estimand"].eq("risk_difference_per100")]
    logit, robust, wild = (pooled[pooled["method"].eq(m)].iloc[0]
                           for m in ("logit_glm", "lpm_cluster_robust", "lpm_wild_cluster_bootstrap"))
    assert (f"The pooled logistic regression estimates a change of {_per100(logit['estimate'])} reoffenders per 100 CARA "
            f"cases (90% confidence interval {_per100(logit['ci_low'])} to {_per100(logit['ci_high'])})") in text
    assert (f"{_per100(robust['ci_low'])} to {_per100(robust['ci_high'])} cluster-robust against "
            f"{_per100(wild['ci_low'])} to {_per100(wild['ci_high'])} bootstrapped") in text
    assert "with 3 forces they are too small" in text
    propensity = pooled[pooled["method"].eq("propensity_att")].iloc[0]
    assert f"the comparison gives {_per100(propensity['estimate'])} per 100 CARA cases" in text
    assert "cannot remove the secular trend" in text

    summary = pd.read_csv(tiny_run / "results/costbenefit/summary.csv")
    cb = summary[summary["scope"].eq("pooled")].iloc[0]
    assert (f"the net monetary benefit over all forces is {_money(cb['nmb_per_participant_mean'])} per participant "
            f"({_pounds_interval(cb['nmb_per_participant_q05'], cb['nmb_per_participant_q95'])}; 90% interval), "
            f"a benefit-cost ratio of {cb['bcr_median']:.2f}") in text
    for _, row in summary.iterrows():  # cost per reoffender avoided only where defined, else the reason
        if pd.isna(row["cost_per_reoffence_avoided"]):
            assert f"not reported: {row['cost_per_reoffence_avoided_reason'].split(': ', 1)[1]}" in text
        else:
            assert _money(row["cost_per_reoffence_avoided"]) in text
    assert text.count("illustrative") >= 2
    assert "No calibration run is recorded for this report" in text and "snakemake calibration" in text
    # Forest plot, completeness heatmap, the acceptability curve and the sensitivity summary, embedded.
    assert page.count('src="data:image/png;base64,') == 4
    assert find_small_counts(page) == []
