"""Calibration target (`snakemake calibration`) and the report sections for cross-checks, cost-benefit and calibration."""

import hashlib
import html
import io
import json
import re

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
import yaml
from conftest import REPO, deep_merge, make_workdir, run_snakemake, tiny_config

from cara_eval.calibration.archive import _newest_summary, read_coverage, summarise_store
from cara_eval.calibration.replicates import (
    EFFECT_SHARE,
    REPLICATE_COLUMNS,
    max_r_hat,
    mixed_fit,
    scenario_hierarchy,
    scenario_settings,
    simulate_replicate,
)
from cara_eval.calibration.sbc import SBC_PARAMETERS, rank_counts, thinned_ranks, uniform_band, uniformity_table
from cara_eval.calibration.store import (
    differences,
    installed_packages,
    replicate_settings,
    save_replicates,
    settings_digest,
    stored_replicate,
)
from cara_eval.calibration.summary import (
    COVERAGE_COLUMNS,
    SUMMARY_FILES,
    clopper_pearson,
    coverage_table,
    summary_source,
    target_table,
)
from cara_eval.common.disclosure import find_small_counts
from cara_eval.model.naive import naive_before_after
from cara_eval.provenance.record import git_state
from cara_eval.report.data import ReportData
from cara_eval.report.formatting import percent
from cara_eval.report.sections import calibration as calibration_section
from cara_eval.report.sections.costbenefit import _money, _pounds_interval
from cara_eval.synth.forces import force_designs
from cara_eval.synth.population import LINEAR_TREND_SLOPE, Hierarchy, _force_step, simulate_population

TINY_CALIBRATION = {
    "replicates": 2,
    "n_cases": 300,
    "forces": ["hampshire", "norfolk", "west_yorkshire"],
    "run_scenarios": ["default", "no_effect"],
    "sbc": {"replicates": 2, "design_scenario": "default", "thinned_draws": 19, "bins": 5},
    "fit": {"chains": 2, "draws": 50, "tune": 50, "sampler": "pymc", "mass_matrix": "diagonal"},  # PyMC's only kind
    "no_pooling_replicates": 1,
    "refit_max_r_hat": 1.5,  # 2 x 50 draws; the refit itself is tested on its own (test_a_fit_that_did_not_mix...)
}
NINE = None  # simulate_population's forces argument for the nine forces
UNMIXED_R_HAT = 1.05  # config calibration.refit_max_r_hat as shipped: a fit above it after its refit did not mix


def _replicates(rows):
    """Replicate rows in the contract layout from (scenario, replicate, method, scope, level, truth, estimate, q25,
    q75, q05, q95) tuples; coverage flags computed the way run_replicate computes them."""
    table = pd.DataFrame(rows, columns=["scenario", "replicate", "method", "scope", "level", "truth", "estimate",
                                        "q25", "q75", "q05", "q95"])
    table["covered_50"] = ((table["q25"] <= table["truth"]) & (table["truth"] <= table["q75"])).where(table["q05"].notna())
    table["covered_90"] = ((table["q05"] <= table["truth"]) & (table["truth"] <= table["q95"])).where(table["q05"].notna())
    table["bias"] = table["estimate"] - table["truth"]
    table["seconds"] = table["replicate"].map({0: 100.0, 1: 140.0})
    table["cpu_seconds"] = table["seconds"] / 2
    return table.assign(estimand="risk_difference_per100", divergences=0, gate_passed=True, max_r_hat=1.0,
                        refitted=False)[REPLICATE_COLUMNS]


def test_coverage_counts_intervals_that_hold_the_truth_with_the_replicate_as_unit():
    replicates = _replicates([
        ("s", 0, "bayes_hierarchical", "pooled", "", -5.0, -4.0, -4.5, -3.5, -7.0, -1.0),  # 90 only
        ("s", 0, "bayes_hierarchical", "force", "a", -5.0, -5.0, -6.0, -4.0, -8.0, -2.0),  # both
        ("s", 0, "bayes_hierarchical", "force", "b", 1.0, -5.0, -6.0, -4.0, -8.0, -2.0),   # neither
        ("s", 0, "naive_before_after", "pooled", "", -5.0, -9.0, np.nan, np.nan, np.nan, np.nan),
        ("s", 1, "bayes_hierarchical", "pooled", "", -5.0, -5.5, -6.0, -4.0, -8.0, -3.0),  # both
        ("s", 1, "bayes_hierarchical", "force", "a", -5.0, -3.0, -4.0, -2.0, -6.0, -1.0),  # 90 only
        ("s", 1, "bayes_hierarchical", "force", "b", -2.0, -2.0, -3.0, -1.0, -4.0, 0.0),   # both
        ("s", 1, "naive_before_after", "pooled", "", -5.0, -7.0, np.nan, np.nan, np.nan, np.nan),
    ])
    refitted = replicates["replicate"].eq(1) & replicates["method"].eq("bayes_hierarchical")
    replicates.loc[refitted, ["refitted", "max_r_hat"]] = [True, 1.3]  # and still not mixed
    coverage = coverage_table(replicates, UNMIXED_R_HAT).set_index(["scenario", "method", "estimand", "scope", "level"])
    assert list(coverage.reset_index().columns) == COVERAGE_COLUMNS
    pooled = coverage.loc[("s", "bayes_hierarchical", "risk_difference_per100", "pooled", "")]
    assert (pooled["n_replicates"], pooled["coverage_50"], pooled["coverage_90"]) == (2, 0.5, 1.0)
    assert (pooled["coverage_90_low"], pooled["coverage_90_high"]) == pytest.approx(clopper_pearson(2, 2))
    assert pooled["bias"] == pytest.approx((1.0 - 0.5) / 2)
    assert pooled["rmse"] == pytest.approx(np.sqrt((1.0**2 + 0.5**2) / 2))
    assert pooled["mean_width_90"] == pytest.approx((6.0 + 5.0) / 2)
    assert (pooled["seconds_per_replicate"], pooled["cpu_seconds_per_replicate"]) == pytest.approx((120.0, 60.0))
    every_force = coverage.loc[("s", "bayes_hierarchical", "risk_difference_per100", "force", "all")]
    assert (every_force["n_estimates"], every_force["coverage_50"], every_force["coverage_90"]) == (4, 0.5, 0.75)
    # Two replicates, not four estimates: replicate 0 covered half its forces, replicate 1 all.
    assert (every_force["coverage_90_low"], every_force["coverage_90_high"]) == pytest.approx(clopper_pearson(1.5, 2))
    force_a = coverage.loc[("s", "bayes_hierarchical", "risk_difference_per100", "force", "a")]
    assert (force_a["n_replicates"], force_a["coverage_90"], force_a["coverage_50"]) == (2, 1.0, 0.5)
    naive = coverage.loc[("s", "naive_before_after", "risk_difference_per100", "pooled", "")]
    assert np.isnan(naive["coverage_90"]) and naive["bias"] == pytest.approx(-3.0)
    assert (pooled["n_refitted"], every_force["n_refitted"], naive["n_refitted"]) == (1, 1, 0)  # replicates, not rows
    assert (pooled["n_unmixed"], every_force["n_unmixed"]) == (1, 1)
    # Errors over the forces 0, -6, +2, 0: the mean is pulled by one, the median is not.
    assert (every_force["bias"], every_force["median_error"]) == pytest.approx((-1.0, 0.0))
    # Replicate files from before the refit rule have neither column: summarised as never refitted.
    older = coverage_table(replicates.drop(columns=["max_r_hat", "refitted"]), UNMIXED_R_HAT)
    assert older["n_refitted"].eq(0).all() and older["n_unmixed"].isna().all()
    pd.testing.assert_series_equal(older["coverage_90"], coverage.reset_index()["coverage_90"])


def test_tau_on_its_boundary_has_no_coverage_but_a_bias_and_does_not_fail_the_targets():
    rows = [(scenario, r, "bayes_hierarchical", "pooled", "", truth, estimate, estimate - 0.02, estimate + 0.02,
             estimate - 0.05, estimate + 0.05)
            for scenario, truth in (("tau_zero", 0.0), ("default", 0.1)) for r, estimate in ((0, 0.06), (1, 0.08))]
    replicates = _replicates(rows).assign(estimand="tau")
    replicates = pd.concat([replicates, replicates.assign(estimand="risk_difference_per100", truth=-5.0,
                                                          estimate=-5.1, q05=-7.0, q25=-6.0, q75=-4.0, q95=-3.0,
                                                          covered_50=True, covered_90=True, bias=-0.1)])
    coverage = coverage_table(replicates, UNMIXED_R_HAT).set_index(["scenario", "estimand"])
    on_boundary, inside = coverage.loc[("tau_zero", "tau")], coverage.loc[("default", "tau")]
    assert np.isnan(on_boundary["coverage_90"]) and np.isnan(on_boundary["coverage_50_low"])
    assert on_boundary["bias"] == pytest.approx(0.07)  # the heterogeneity read into identical effects
    assert inside["coverage_90"] == 1.0  # 0.01-0.11 and 0.03-0.13 both hold 0.1
    calibration = {**tiny_config()["calibration"], "scenarios": {"tau_zero": {"tau": 0.0}, "default": {}}}
    targets = target_table(coverage.reset_index(), calibration).set_index(["scenario", "estimand"])
    assert pd.isna(targets.loc[("tau_zero", "tau"), "coverage_in_band"])
    assert targets.loc[("tau_zero", "tau"), "verdict"] == "met"
    # 100% is judged and above the 85-95% band, but with K = 2 its interval (16-100%) reaches into it
    assert targets.loc[("default", "tau"), "verdict"] == "not decided"


def test_targets_judge_coverage_and_bias_with_their_uncertainty_at_this_k():
    def scenario(name, errors, covered):
        """K = len(errors) pooled risk differences (truth -5) with the given errors; covered ones get a wide interval."""
        return [(name, r, "bayes_hierarchical", "pooled", "", -5.0, -5.0 + error, -5.0 + error - 0.1,
                 -5.0 + error + 0.1, *((-9.0, -1.0) if hit else (-4.5 + error, -4.4 + error)))
                for r, (error, hit) in enumerate(zip(errors, covered))]
    k = 40
    alternating = np.tile([-0.2, 0.2], k // 2)
    rows = (scenario("holds", alternating, np.arange(k) % 10 != 0)  # 36/40 covered, bias 0
            + scenario("undercovers", alternating, np.arange(k) % 2 == 0)  # 20/40: interval 34-66%, below 85%
            + scenario("noisy_bias", 0.6 + 4 * alternating, np.arange(k) % 10 != 0)  # bias 0.6, SE 0.13
            + scenario("steady_bias", 0.9 + alternating, np.arange(k) % 10 != 0))  # bias 0.9, SE 0.03
    calibration = {**tiny_config()["calibration"], "scenarios": {name: {} for name in
                                                                 ("holds", "undercovers", "noisy_bias", "steady_bias")}}
    targets = target_table(coverage_table(_replicates(rows), UNMIXED_R_HAT), calibration).set_index("scenario")
    assert targets["verdict"].to_dict() == {"holds": "met", "undercovers": "missed", "noisy_bias": "not decided",
                                            "steady_bias": "missed"}
    noisy = targets.loc["noisy_bias"]
    assert noisy["bias_low"] < 0.5 < noisy["bias"] < noisy["bias_high"]
    assert noisy["bias_high"] - noisy["bias"] == pytest.approx(1.96 * 0.8 / np.sqrt(k - 1), rel=1e-6)


def _tiny_fit(config, seed):
    """A real two-parameter PyMC fit with the replicate fit's settings (chains, draws, tune)."""
    with pm.Model():
        mu_log_hr = pm.Normal("mu_log_hr", 0.0, 1.0)
        tau = pm.HalfNormal("tau", 1.0)
        pm.Normal("y", mu_log_hr, tau + 0.5, observed=np.array([-0.3, 0.1, -0.2, 0.0]))
        return pm.sample(draws=config["draws"], tune=config["tune"], chains=config["chains"], cores=1,
                         random_seed=seed, progressbar=False, compute_convergence_checks=False)


def test_a_fit_that_did_not_mix_is_refitted_once_with_four_chains_and_twice_the_draws():
    settings = {"chains": 2, "draws": 60, "tune": 60}
    idata, r_hat, refitted = mixed_fit(_tiny_fit, settings, {"refit_max_r_hat": 10.0}, seed=3)
    assert not refitted and idata.posterior.sizes == {"chain": 2, "draw": 60} and r_hat == max_r_hat(idata)
    # Every real fit has R-hat above 1.0, so a threshold of 1.0 forces the refit path.
    idata, r_hat, refitted = mixed_fit(_tiny_fit, settings, {"refit_max_r_hat": 1.0}, seed=3)
    assert refitted and idata.posterior.sizes == {"chain": 4, "draw": 120}
    assert r_hat == max_r_hat(idata) == pytest.approx(float(az.rhat(idata).to_array().max()))


def test_report_separates_missed_targets_from_ones_this_k_cannot_decide(tmp_path):
    # Pooled coverage 2/2 for every scenario: 100% is above the band, but with K = 2 its interval reaches into it.
    rows = [(scenario, r, "bayes_hierarchical", "pooled", "", -5.0, estimate, -6.0, -4.0, -8.0, -2.0)
            for scenario, estimate in (("close", -5.1), ("biased", -4.0)) for r in (0, 1)]
    coverage = coverage_table(_replicates(rows), UNMIXED_R_HAT)
    calibration = {**tiny_config()["calibration"], "scenarios": {"close": {}, "biased": {}}}
    coverage.to_csv(tmp_path / "coverage.csv", index=False)
    target_table(coverage, calibration).to_csv(tmp_path / "targets.csv", index=False)
    data = ReportData({"tables": {}, "report": {"disclosure_threshold": 10}, "config": {
        "calibration": calibration, "calibration_run": {"coverage": str(tmp_path / "coverage.csv"),
                                                        "targets": str(tmp_path / "targets.csv")}}})
    text = calibration_section.calibration_markdown(data)
    assert ("met in 0 of 2 non-adversarial scenarios; not decided at this K (outside the target, but the 95% interval "
            "of the coverage or bias reaches into it) in close; missed in biased.") in text  # biased: every error +1.0


def test_report_states_how_far_the_adversarial_step_moves_the_step_forces_estimate(tmp_path):
    replicates = _replicates([
        ("adversarial_step", r, "bayes_hierarchical", scope, level, -5.0, estimate, estimate - 1, estimate + 1,
         estimate - 3, estimate + 3)
        for r, shift in ((0, -3.0), (1, -5.0))  # the step force's interval holds the truth in replicate 0 only
        for scope, level, estimate in (("pooled", "", -5.5), ("force", "avon_and_somerset", -5.0 + shift))
    ])
    replicates.loc[replicates["replicate"].eq(0), ["refitted", "max_r_hat"]] = [True, 1.6]  # and still not mixed
    coverage_table(replicates, UNMIXED_R_HAT).to_csv(tmp_path / "coverage.csv", index=False)
    calibration = tiny_config()["calibration"]
    data = ReportData({"tables": {}, "report": {"disclosure_threshold": 10}, "config": {
        "calibration": calibration, "calibration_run": {"coverage": str(tmp_path / "coverage.csv")}}})
    text = calibration_section.calibration_markdown(data)
    assert text.startswith("The run record of this calibration is missing (date, code version and K unknown).\n\n- ")
    assert ("the step that is not CARA moved Avon And Somerset's estimate by -4.0 per 100 on average (90% intervals "
            "held its true effect in 50%)") in text
    assert ("bias -0.5 per 100; 1 of these fits refitted with longer chains after a chain did not mix; 1 still did "
            f"not mix after the refit (largest R-hat above {calibration['refit_max_r_hat']}) and count as they are") in text
    table = calibration_section.calibration_table(data).set_index("Estimand")
    assert table.loc["Risk difference per 100, pooled", ["Bias", "Median error", "Unmixed fits"]].tolist() == [
        "-0.50", "-0.50", "1"]
    assert table.loc["Risk difference per 100, each force", ["Bias", "Median error"]].tolist() == ["-4.00", "-4.00"]


def test_report_gives_the_spread_of_each_forces_coverage_and_its_largest_bias(tmp_path):
    rows = [("default", r, "bayes_hierarchical", scope, level, -5.0, estimate, estimate - 1, estimate + 1,
             estimate - 2, estimate + 2)
            for r in (0, 1, 2, 3)
            for scope, level, estimate in (("pooled", "", -5.2), ("force", "dorset", -5.0 + (3.0 if r == 0 else 0.5)),
                                           ("force", "hampshire", -5.1))]
    coverage_table(_replicates(rows), UNMIXED_R_HAT).to_csv(tmp_path / "coverage.csv", index=False)
    data = ReportData({"tables": {}, "report": {"disclosure_threshold": 10}, "config": {
        "calibration": tiny_config()["calibration"], "calibration_run": {"coverage": str(tmp_path / "coverage.csv")}}})
    text = calibration_section.calibration_markdown(data)
    # Dorset's 90% interval misses the truth (-5) in replicate 0 only (-4.0 to 0.0); its errors +3.0, +0.5 x 3: +1.1
    assert ("each force's 90% intervals held its own effect in 75% (Dorset) to 100% (Hampshire) of replicates, the "
            "largest bias of one force +1.1 per 100 (Dorset)") in text


def test_the_report_shows_this_checkouts_calibration_else_the_newest_archived_one(tmp_path):
    results, archive = tmp_path / "results" / "calibration", tmp_path / "docs" / "calibration"
    assert summary_source(results, archive) == (None, False)
    for run_date in ("2026-11-30", "2026-12-01", "2026-12-02"):
        (archive / run_date).mkdir(parents=True)
    for run_date in ("2026-11-30", "2026-12-01"):  # 2026-12-02 has no coverage table: not a summary
        (archive / run_date / "coverage.csv").write_text("scenario\n")
    assert summary_source(results, archive) == (archive / "2026-12-01", True)
    # A day's later summaries are numbered: the tenth is newer than the ninth, though not as text.
    for run_date in ("2026-12-03", "2026-12-03.2", "2026-12-03.9", "2026-12-03.10"):
        (archive / run_date).mkdir()
        (archive / run_date / "coverage.csv").write_text("scenario\n")
    assert summary_source(results, archive) == (archive / "2026-12-03.10", True)
    assert _newest_summary(archive, archive / "2026-12-03.10") == archive / "2026-12-03.9"
    assert summary_source(results, None) == (None, False)
    results.mkdir(parents=True)
    (results / "coverage.csv").write_text("scenario\n")
    assert summary_source(results, archive) == (results, False)


def test_the_archived_calibration_reads_as_the_report_quotes_it():
    # What a fresh clone's report shows: the newest summary archived under config report.calibration_archive.
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    directory, archived = summary_source(REPO / "no-results-here", REPO / config["report"]["calibration_archive"])
    assert archived and directory.parent == REPO / "docs" / "calibration"
    run = json.loads((directory / "run.json").read_text())
    files = {key: str(directory / name) for key, name in SUMMARY_FILES.items()}
    data = ReportData({"tables": {}, "report": {"disclosure_threshold": 10}, "config": {
        "calibration": config["calibration"], "calibration_run": {**files, "archive": "docs/calibration/x"}}})
    text = calibration_section.calibration_markdown(data)
    counts = run["replicates"]["scenarios"]  # one K for all, or each scenario's own: whichever the archive holds
    k_text = (f"K = {max(counts.values())} replicates in each of {len(counts)} scenarios" if len(set(counts.values())) == 1
              else "replicates per scenario: " + ", ".join(f"{scenario} {k}" for scenario, k in counts.items()))
    assert text.startswith(f"Calibration run of {run['run_date'][:10]} (commit {run['git']['commit'][:10]}), "
                           f"archived in `docs/calibration/x` (not rerun with this report); {k_text}")
    assert run.get("note", "") in text
    coverage = calibration_section.calibration_coverage(data)
    assert set(coverage["scenario"]) == set(run["replicates"]["scenarios"])
    assert len(calibration_section.calibration_table(data)) == coverage["level"].isin(["", "all"]).sum()
    assert calibration_section.sbc_figure(data).axes


def test_rows_carried_over_twice_still_bring_the_words_of_the_summary_they_were_first_written_in(tmp_path):
    # 2026-12-02 (before the store: its note says which rows are which model) -> 2026-12-02.2 -> a new summary.
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    store = tmp_path / "store"
    store.mkdir()
    for name in ("default.csv.gz", "provenance.json"):
        (store / name).write_bytes((REPO / config["calibration"]["store"] / name).read_bytes())
    origin = "docs/calibration/2026-12-02"
    record = summarise_store(store, tmp_path / "summary", config, REPO / "docs/calibration/2026-12-02.2")
    carried = {name: source for name, source in record["sources"].items() if source["from"] != "store"}
    assert set(carried) == set(config["calibration"]["scenarios"]) - {"default"} | {"sbc"}
    assert all(source["earlier"]["from"] == origin for source in carried.values())
    quote = json.loads((REPO / origin / "run.json").read_text())["note"]
    assert record["note"].endswith(
        f"first summarised in {origin}. The note of {origin}, on the rows carried over from it: {quote}")


def test_clopper_pearson_matches_its_closed_forms_and_published_values():
    # No success in n: upper limit 1 - (alpha/2)^(1/n); all successes mirror it.
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)))
    assert clopper_pearson(10, 10) == pytest.approx((0.025 ** (1 / 10), 1.0))
    # 5 of 10 (Clopper and Pearson's tables; e.g. Newcombe 1998, Stat Med 17:857): 0.187 to 0.813.
    assert clopper_pearson(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)
    low, high = clopper_pearson(180, 200)
    assert low < 0.9 < high and high - low < 0.1


def test_thinned_ranks_count_the_kept_draws_below_the_truth():
    posterior = xr.Dataset({"tau": (("chain", "draw"), np.arange(200, dtype=float).reshape(2, 100))})
    # 20 draws evenly over 0..199: 0, 10.47.., ..., 199; those below 50.5 are 0..5 (6 of them).
    kept = np.arange(200)[np.linspace(0, 199, 20).round().astype(int)]
    assert thinned_ranks({"tau": 50.5}, posterior, 20) == {"tau": int((kept < 50.5).sum())} == {"tau": 5}
    assert thinned_ranks({"tau": -1.0}, posterior, 20) == {"tau": 0}
    assert thinned_ranks({"tau": 500.0}, posterior, 20) == {"tau": 20}


def test_uniform_ranks_pass_the_uniformity_checks_and_a_pile_up_fails():
    uniform = pd.DataFrame({"parameter": "mu_log_hr", "rank": np.arange(100), "n_draws": 99})
    assert rank_counts(uniform["rank"], 99, 10).tolist() == [10] * 10
    check = uniformity_table(uniform, 10).iloc[0]
    assert check["chi_square"] == 0.0 and check["p_value"] == pytest.approx(1.0) and check["df"] == 9
    assert check["max_ecdf_difference"] <= 0.01
    piled = pd.DataFrame({"parameter": "tau", "rank": np.r_[np.zeros(50), np.full(50, 99)], "n_draws": 99})
    assert uniformity_table(piled, 10).iloc[0]["p_value"] < 1e-6
    low, high = uniform_band(100, 10)
    assert low < 10 < high
    with pytest.raises(ValueError, match="multiple of bins"):
        rank_counts(uniform["rank"], 99, 7)


def _scenario_truth(scenario: str, n_cases: int = 18000):
    calibration = deep_merge(tiny_config()["calibration"], {"n_cases": n_cases, "forces": []})
    return simulate_replicate(scenario, 0, calibration, 2026)


def test_scenarios_set_the_generators_truth_as_intended():
    cases, truth = _scenario_truth("tau_zero")
    effects = [force["log_hr"] for force in truth["forces"].values()]
    assert len(effects) == 9 and np.ptp(effects) == 0 and effects[0] == pytest.approx(-0.25)
    assert truth["hierarchy"]["tau"] == 0.0

    _, truth = _scenario_truth("no_effect")
    outcome = truth["outcomes"]["any_reoffence"]
    assert outcome["pooled"]["risk_difference_per100"] == 0.0 and outcome["pooled"]["risk_ratio"] == 1.0
    assert {force["risk_difference_per100"] for force in outcome["by_force"].values()} == {0.0}

    cases, truth = _scenario_truth("new_small_force", 18250)
    assert len(truth["forces"]) == 10 and truth["forces"]["newsmall_1"]["n_cases"] < 300
    assert truth["forces"]["newsmall_1"]["cara_start"] > max(
        f["cara_start"] for key, f in truth["forces"].items() if key != "newsmall_1")
    assert set(cases["force"]) >= {"newsmall_1"}

    _, steep = _scenario_truth("steep_fall")
    assert steep["hierarchy"]["trend_slope"] == 2 * LINEAR_TREND_SLOPE
    _, default = _scenario_truth("default")
    assert "trend_slope" not in default["hierarchy"]  # the default scenario is the default data's generator


def test_the_adversarial_step_lowers_the_step_forces_hazard_only_after_its_start():
    calibration = tiny_config()["calibration"]
    settings = scenario_settings(calibration, "adversarial_step")
    hierarchy = scenario_hierarchy(settings)
    assert (hierarchy.step_force, hierarchy.step_log_hr) == ("avon_and_somerset", -0.2)
    cases, truth = simulate_replicate("adversarial_step", 0, deep_merge(calibration, {"n_cases": 3000}), 5)
    designs = force_designs(None, None, 5)
    step = _force_step(cases, designs, hierarchy)
    start = pd.Timestamp(truth["forces"]["avon_and_somerset"]["cara_start"])
    stepped = cases["force"].eq("avon_and_somerset") & (cases["index_date"] >= start)
    assert (step[stepped.to_numpy()] == -0.2).all() and (step[~stepped.to_numpy()] == 0).all()
    assert stepped.sum() > 0
    assert truth["hierarchy"]["step_force"] == "avon_and_somerset" and truth["hierarchy"]["step_log_hr"] == -0.2


# SHA-256 of the cases, later offences and truth that the generator gave before the calibration knobs existed
# (commit c1466b1), for two default configurations: the default data must not move by one byte.
DEFAULT_DATA_DIGESTS = {
    (600, 7, "linear"): "580272da3e83c0fb3f789b572bf93b812f815d5947ee3f0e2edc7d41294541ee",
    (2000, 11, "nonlinear"): "e6700f318c0501fb5baca9b62ddd45a304cc114511ed46214fde5e2e1484fc42",
}


@pytest.mark.parametrize(("n_cases", "seed", "shape"), list(DEFAULT_DATA_DIGESTS))
def test_default_synthetic_data_are_byte_identical_to_before_the_scenario_knobs(n_cases, seed, shape):
    population = simulate_population(n_cases, NINE, seed, shape, missingness=True, pseudonyms=False)
    digest = hashlib.sha256(pd.util.hash_pandas_object(population.cases, index=True).values.tobytes()
                            + pd.util.hash_pandas_object(population.reoffences, index=True).values.tobytes()
                            + json.dumps(population.truth, sort_keys=True).encode()).hexdigest()
    assert digest == DEFAULT_DATA_DIGESTS[(n_cases, seed, shape)]
    assert simulate_population(n_cases, NINE, seed, shape, missingness=True, pseudonyms=False,
                               hierarchy=Hierarchy()).truth == population.truth


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """`snakemake calibration` on a tiny grid (2 scenarios x 2 replicates, 2 SBC replicates) in a fresh directory."""
    config = deep_merge(tiny_config(), {"calibration": TINY_CALIBRATION})
    workdir = make_workdir(tmp_path_factory.mktemp("calibration") / "work", config)
    dry_default = run_snakemake(workdir, "-n")
    run_snakemake(workdir, "calibration")
    # Raising K (and the SBC's K) must only add replicate jobs, never rerun a finished one; so must tuning what no
    # replicate reads: the primary fits' draws (calibration.fit sets its own), the report's and the forest plot's.
    config_path = workdir / "config" / "config.yaml"
    more = deep_merge(config, {"calibration": {"replicates": 3, "sbc": {"replicates": 3}},
                               "model": {"draws": 123, "tune": 77, "ppc_draws": 11, "no_pooling_draws": 13,
                                         "strict": not config["model"]["strict"]}})
    config_path.write_text(yaml.safe_dump(more, sort_keys=False))
    dry_more = run_snakemake(workdir, "-n", "calibration")
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir, config, dry_default, dry_more


@pytest.mark.slow
def test_calibration_target_fits_each_replicate_against_its_own_truth(calibrated):
    workdir, config, dry_default, dry_more = calibrated
    assert "calibration_replicate" not in dry_default.stdout  # not part of the default run
    planned = re.findall(r"output: (results/calibration/(?:replicates|sbc)/[^\s,]+)", dry_more.stdout)
    assert sorted(planned) == ["results/calibration/replicates/default/2.csv",
                               "results/calibration/replicates/no_effect/2.csv", "results/calibration/sbc/2.csv"]
    for scenario, replicate in [("default", 0), ("default", 1), ("no_effect", 0), ("no_effect", 1)]:
        table = pd.read_csv(workdir / f"results/calibration/replicates/{scenario}/{replicate}.csv")
        assert list(table.columns) == REPLICATE_COLUMNS and set(table["scenario"]) == {scenario}
        # The truth and the naive estimate are those of the replicate's own simulated population.
        cases, truth = simulate_replicate(scenario, replicate, config["calibration"], config["seed"])
        truths = truth["outcomes"]["any_reoffence"]
        bayes = table[table["method"].eq("bayes_hierarchical")].fillna({"level": ""})
        bayes = bayes.set_index(["estimand", "scope", "level"])
        for estimand in ("risk_difference_per100", "risk_ratio"):
            assert bayes.loc[(estimand, "pooled", ""), "truth"] == pytest.approx(truths["pooled"][estimand])
            for force in TINY_CALIBRATION["forces"]:
                assert bayes.loc[(estimand, "force", force), "truth"] == pytest.approx(
                    truths["by_force"][force][estimand])
        assert bayes.loc[("tau", "pooled", ""), "truth"] == pytest.approx(EFFECT_SHARE * truth["hierarchy"]["tau"])
        if scenario == "no_effect":
            assert bayes.loc[("risk_difference_per100", "pooled", ""), "truth"] == 0.0
        naive = table[table["method"].eq("naive_before_after")].fillna({"level": ""}).set_index(["scope", "level"])
        expected = naive_before_after(cases).set_index(["scope", "level"])["estimate"].dropna()
        assert naive["estimate"].to_dict() == pytest.approx(expected.to_dict())
        # Intervals are ordered and the flags say whether they hold the truth.
        fitted = table[table["method"].ne("naive_before_after")]
        # RD and RR pooled and per force, tau; no pooling (per force) on the first no_pooling_replicates only.
        if replicate < TINY_CALIBRATION["no_pooling_replicates"]:
            assert set(fitted["method"]) == {"bayes_hierarchical", "no_pooling"}
            assert len(fitted) == (2 + 2 * 3 + 1) + 2 * 3
        else:
            assert set(fitted["method"]) == {"bayes_hierarchical"} and len(fitted) == 2 + 2 * 3 + 1
        assert ((fitted["q05"] <= fitted["q25"]) & (fitted["q25"] <= fitted["q75"]) & (fitted["q75"] <= fitted["q95"])).all()
        held = (fitted["q05"] <= fitted["truth"]) & (fitted["truth"] <= fitted["q95"])
        assert fitted["covered_90"].astype(bool).tolist() == held.tolist()
        assert (table["seconds"] > 0).all() and (table["cpu_seconds"] > 0).all()
        # Every fit's mixing is recorded; a fit kept without its refit mixed to the threshold (a refit records the
        # refit's own R-hat, which may lie on either side of it).
        assert (fitted["max_r_hat"] >= 1).all()
        kept = ~fitted["refitted"].astype(bool)
        assert (fitted.loc[kept, "max_r_hat"] <= TINY_CALIBRATION["refit_max_r_hat"]).all()
    assert (workdir / "logs/calibration_replicate/default/0.log").is_file()
    assert (workdir / "benchmarks/calibration_replicate/no_effect/1.tsv").is_file()


@pytest.mark.slow
def test_coverage_tables_summarise_the_replicate_files(calibrated):
    workdir, config, _, _ = calibrated
    coverage = pd.read_csv(workdir / "results/calibration/coverage.csv").fillna({"level": ""})
    assert list(coverage.columns) == COVERAGE_COLUMNS and set(coverage["scenario"]) == {"default", "no_effect"}
    for scenario in ("default", "no_effect"):
        alone = pd.read_csv(workdir / f"results/calibration/{scenario}/coverage.csv").fillna({"level": ""})
        pd.testing.assert_frame_equal(alone, coverage[coverage["scenario"].eq(scenario)].reset_index(drop=True))
        replicates = pd.concat([pd.read_csv(workdir / f"results/calibration/replicates/{scenario}/{r}.csv")
                                for r in (0, 1)]).fillna({"level": ""})
        rows = alone.set_index(["method", "estimand", "scope", "level"])
        fitted = replicates[replicates["method"].ne("naive_before_after")]
        for (method, estimand, scope, level), group in fitted.groupby(["method", "estimand", "scope", "level"]):
            row = rows.loc[(method, estimand, scope, level)]
            assert row["bias"] == pytest.approx((group["estimate"] - group["truth"]).mean())
            assert row["n_replicates"] == (1 if method == "no_pooling" else 2)  # no pooling: replicate 0 only
            if estimand == "tau" and group["truth"].eq(0).all():  # no_effect: tau on its boundary
                assert np.isnan(row["coverage_90"])
                continue
            assert row["coverage_90"] == pytest.approx(group["covered_90"].astype(float).mean())
            assert row["coverage_90_low"] <= row["coverage_90"] <= row["coverage_90_high"]
        for (method, estimand), group in fitted[fitted["scope"].eq("force")].groupby(["method", "estimand"]):
            assert rows.loc[(method, estimand, "force", "all"), "coverage_50"] == pytest.approx(
                group["covered_50"].astype(float).mean())
    targets = pd.read_csv(workdir / "results/calibration/targets.csv")
    assert set(targets["scenario"]) == {"default", "no_effect"} and not targets["adversarial"].any()
    pooled = targets[targets["scope"].eq("pooled") & targets["estimand"].eq("risk_difference_per100")]
    assert (pooled["bias_within_limit"] == (pooled["bias"].abs() <= 0.5)).all()
    assert (workdir / "results/calibration/coverage.png").read_bytes().startswith(b"\x89PNG")
    run = json.loads((workdir / "results/calibration/run.json").read_text())
    assert run["replicates"] == {"scenarios": {"default": 2, "no_effect": 2}}
    assert run["run_date"][:4].isdigit() and (run["git"]["commit"] or run["package_version"])

    # SBC: one rank per parameter and replicate, within 0..L; the summary counts them all.
    ranks = pd.read_csv(workdir / "results/calibration/sbc_ranks.csv")
    assert len(ranks) == 2 * len(SBC_PARAMETERS) and set(ranks["parameter"]) == set(SBC_PARAMETERS)
    assert ranks["rank"].between(0, TINY_CALIBRATION["sbc"]["thinned_draws"]).all()
    uniformity = pd.read_csv(workdir / "results/calibration/sbc_uniformity.csv")
    assert (uniformity["n_replicates"] == 2).all() and (uniformity["df"] == 4).all()
    assert (workdir / "results/calibration/sbc_ranks.png").read_bytes().startswith(b"\x89PNG")

    # The report's appendix quotes this run's numbers.
    run_files = {key: str(workdir / "results/calibration" / name) for key, name in SUMMARY_FILES.items()}
    data = ReportData({"tables": {}, "report": {"disclosure_threshold": 10},
                       "config": {"calibration": config["calibration"], "calibration_run": run_files}})
    text = calibration_section.calibration_markdown(data)
    default = coverage[coverage["scenario"].eq("default") & coverage["method"].eq("bayes_hierarchical")
                       & coverage["estimand"].eq("risk_difference_per100") & coverage["scope"].eq("pooled")].iloc[0]
    assert f"Calibration run of {run['run_date'][:10]}" in text and "K = 2 replicates in each of 2 scenarios" in text
    assert (f"default: the 90% intervals held the pooled risk difference in {percent(default['coverage_90'])} "
            f"(95% interval {percent(default['coverage_90_low'])}") in text
    table = calibration_section.calibration_table(data)
    assert len(table) == coverage["level"].isin(["", "all"]).sum()
    assert "2 replicates drawn from the model's prior" in calibration_section.sbc_markdown(data)
    assert calibration_section.sbc_figure(data).axes


@pytest.mark.slow
def test_a_new_checkout_takes_replicates_from_the_store_and_fits_only_what_changed_or_is_missing(calibrated, tmp_path):
    workdir, config, _, _ = calibrated
    store = tmp_path / "store"
    assert save_replicates(workdir / "results/calibration", store) == {"default": 2, "no_effect": 2, "sbc": 2}
    records = json.loads((store / "provenance.json").read_text())
    assert len(records) == 3  # one per settings: default, no_effect, the SBC replicates
    sources = next(iter(records.values()))["sources"]
    assert {"model/effectiveness.py", "calibration/replicates.py", "synth/population.py"} <= set(sources)
    assert "calibration/store.py" not in sources  # it decides reuse, not numbers
    assert "common/compile_cache.py" not in sources and "common/cores.py" not in sources  # where and how it runs

    # Another machine: a fresh directory whose config names the store, one replicate more than it holds.
    again = deep_merge(config, {"calibration": {"store": str(store), "replicates": 3, "run_scenarios": ["default"]}})
    other = make_workdir(tmp_path / "other", again)
    outputs = [f"results/calibration/replicates/default/{replicate}.csv" for replicate in range(3)]
    run_snakemake(other, *outputs, "results/calibration/sbc/0.csv", "results/calibration/sbc/1.csv")
    for path in [*outputs[:2], "results/calibration/sbc/0.csv", "results/calibration/sbc/1.csv"]:
        assert (other / path).read_bytes() == (workdir / path).read_bytes(), path
        json_path = path.replace(".csv", ".json")
        assert (other / json_path).read_text() == (workdir / json_path).read_text()
        log = (other / "logs" / path.replace("results/calibration/", "").replace("replicates/", "calibration_replicate/")
               .replace("sbc/", "calibration_sbc_replicate/").replace(".csv", ".log")).read_text()
        assert "taken from the store" in log and "Sampling" not in log
    fitted = (other / "logs/calibration_replicate/default/2.log").read_text()
    assert "taken from the store" not in fitted and "default replicate 2:" in fitted
    assert save_replicates(other / "results/calibration", store) == {"default": 3, "sbc": 2}
    assert len(pd.read_csv(store / "default.csv.gz")) == len(pd.read_csv(store / "no_effect.csv.gz")) + len(
        pd.read_csv(other / outputs[2]))

    # A dated summary of the store: coverage as the grid summary computes it, from every stored replicate; the
    # scenarios the store lacks carried over from the newest archived summary; the record says which is which.
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())  # as the run read it
    previous = REPO / "docs/calibration/2026-12-02"
    record = summarise_store(store, tmp_path / "summary", config, previous)
    coverage = read_coverage(tmp_path / "summary/coverage.csv")
    replicates = pd.concat([pd.read_csv(directory / path) for directory, path in [
        (workdir, outputs[0]), (workdir, outputs[1]), (other, outputs[2])]], ignore_index=True)
    pd.testing.assert_frame_equal(coverage[coverage["scenario"].eq("default")].reset_index(drop=True),
                                  read_coverage(_csv_of(coverage_table(replicates, config["calibration"]["refit_max_r_hat"]))),
                                  check_dtype=False)
    archived = json.loads((previous / "run.json").read_text())["replicates"]["scenarios"]
    assert record["replicates"]["scenarios"] == {**archived, "default": 3, "no_effect": 2}
    assert record["sources"]["default"] == {"from": "store", "replicates": 3, "commits": [run_commit()],
                                            "current_code": True}
    assert record["sources"]["steep_fall"] == {"from": str(previous), "replicates": archived["steep_fall"],
                                               "earlier": None}
    assert record["note"].endswith(f"The note of {previous}, on the rows carried over from it: "
                                   + json.loads((previous / "run.json").read_text())["note"])
    assert record["sources"]["sbc"]["replicates"] == 2
    assert "default (K = 3), no_effect (K = 2), sbc (K = 2): made by this checkout's code and settings" in record["note"]
    assert f"steep_fall (K = {archived['steep_fall']}), " in record["note"]
    steep = read_coverage(previous / "coverage.csv")
    carried = coverage[coverage["scenario"].eq("steep_fall")].reset_index(drop=True)
    pd.testing.assert_frame_equal(carried[steep.columns], steep[steep["scenario"].eq("steep_fall")].reset_index(drop=True))
    assert carried[["median_error", "n_unmixed"]].isna().all().all()  # not counted when that summary was written
    assert set(pd.read_csv(tmp_path / "summary/targets.csv")["scenario"]) == set(archived) | {"default", "no_effect"}
    assert len(pd.read_csv(tmp_path / "summary/sbc_ranks.csv")) == 2 * len(SBC_PARAMETERS)

    # Other settings, other packages or an edited module: the stored copy is not used.
    calibration = replicate_settings(config["calibration"], "default")
    settings = settings_digest(calibration, config["model"], config["seed"])
    packages = installed_packages()
    stored = stored_replicate(store, "default", 0, settings, packages)
    assert stored is not None and stored[0].equals(pd.read_csv(workdir / outputs[0], keep_default_na=False,
                                                               na_values=[""], float_precision="round_trip"))
    tuned = {**config["model"], "draws": 123, "ppc_draws": 11, "compile_dir": str(tmp_path / "cache")}
    assert settings_digest(calibration, tuned, config["seed"]) == settings  # what no replicate reads
    assert settings_digest(calibration, {**config["model"], "target_accept": 0.5}, config["seed"]) != settings
    longer = deep_merge(calibration, {"fit": {"draws": 60}})
    assert stored_replicate(store, "default", 0, settings_digest(longer, config["model"], config["seed"]),
                            packages) is None
    assert stored_replicate(store, "default", 0, settings, [*packages[1:], "python==3.0.0"]) is None
    assert stored_replicate(store, "default", 5, settings, packages) is None
    edited = {key: {**record, "sources": {**record["sources"], "model/effectiveness.py": "0" * 64}}
              for key, record in records.items()}
    (store / "provenance.json").write_text(json.dumps(edited))
    assert stored_replicate(store, "default", 0, settings, packages) is None
    assert all(differences(record, record["settings"], record["packages"]) == ["model/effectiveness.py"]
               for record in edited.values())
    record = summarise_store(store, tmp_path / "summary", config, previous)
    assert not record["sources"]["default"]["current_code"]
    assert (f"default (K = 3), no_effect (K = 2), sbc (K = 2): made by earlier code or settings (commits "
            f"{run_commit()[:7]})") in record["note"]


def _csv_of(table: pd.DataFrame) -> io.StringIO:
    """The table as the summary writes it, to read back."""
    return io.StringIO(table.to_csv(index=False))


def run_commit() -> str | None:
    """The commit the replicate jobs record: this checkout's."""
    return git_state(REPO)["commit"]


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
    # Forest plot, force map, completeness heatmap, the acceptability curve, the sensitivity summary and the
    # planning figure, embedded.
    assert page.count('src="data:image/png;base64,') == 6
    assert find_small_counts(page) == []
