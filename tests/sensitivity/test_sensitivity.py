"""Sensitivity analyses: real short-chain fits on tiny simulated data, and the stage's rules in a workdir."""

import re
import subprocess
import sys
from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, make_workdir, tiny_config
from model_simulation import simulate_cases
from scipy.special import logsumexp

from cara_eval.model.cells import CellSpec, build_cells
from cara_eval.model.effectiveness import build_model, fit_cases
from cara_eval.model.estimands import ESTIMAND_VARIABLES, estimand_table, stacked_draws
from cara_eval.model.gate import gate_table
from cara_eval.sensitivity import new_force
from cara_eval.sensitivity.analyses import (
    cell_log_likelihood,
    cell_loo,
    crossing,
    force_cells,
    lofo_score,
    lofo_scores,
    lofo_table,
    loo_table,
    mnar_grid,
    pooled_summary,
    psis_lofo_scores,
    summary_table,
    tipping_point,
    variant_settings,
    write_gate_and_loo,
)

MODEL = tiny_config()["model"]
SENSITIVITY = {**tiny_config()["sensitivity"], "fit": {"chains": 2, "draws": 100, "tune": 100}}
DRAWS = 2 * 100


def test_variants_change_one_thing_and_say_what():
    settings, pooling, note = variant_settings(MODEL, SENSITIVITY, "tau_half_cauchy_0.25")
    assert pooling == "partial" and settings["priors"]["tau"] == {"dist": "half_cauchy", "sigma": 0.25}
    assert note == "tau prior half_normal(0.25) -> half_cauchy(0.25)"
    assert settings["draws"] == SENSITIVITY["fit"]["draws"] and MODEL["priors"]["tau"]["dist"] == "half_normal"  # config untouched
    settings, pooling, note = variant_settings(MODEL, SENSITIVITY, "force_trends")
    assert settings["priors"]["force_slope"]["sigma"] == 0.15 and note == "force_slope sigma 0.03 -> 0.15"
    assert variant_settings(MODEL, SENSITIVITY, "pooling_none")[1] == "none"
    with pytest.raises(ValueError, match="unknown sensitivity variant"):
        variant_settings(MODEL, SENSITIVITY, "tau_typo")


def test_crossing_is_interpolated_between_grid_points_and_nan_when_never_reached():
    assert crossing([0, 0.5, 1.0], [-2.0, -1.0, 1.0], 0.0) == pytest.approx(0.75)
    assert crossing([-1.0, 0, 1.0], [3.0, -2.0, -1.0], 0.0, baseline=0) == pytest.approx(-0.4)  # nearest first
    assert np.isnan(crossing([0, 1, 2], [-3.0, -2.0, -1.0], 0.0))


def test_tipping_point_finds_where_the_conclusion_changes():
    grid = pd.DataFrame({"delta": [0.0, 0.5, 1.0, 2.0], "rd_mean": [-5.0, -4.0, -3.0, -1.0],
                         "rd_q05": [-8.0, -7.0, -6.0, -4.0], "rd_q95": [-2.0, -1.0, 0.0, 2.0],
                         "pr_any_reduction": [0.99, 0.97, 0.93, 0.7]})
    tip = tipping_point(grid, 0.9).set_index(["criterion", "side"])
    assert tip.loc[("rd_q95_reaches_0", "positive"), "tipping_delta"] == pytest.approx(1.0)
    assert tip.loc[("pr_any_reduction_crosses", "positive"), "tipping_delta"] == pytest.approx(1.0 + 0.03 / 0.23)
    assert np.isnan(tip.loc[("rd_q05_reaches_0", "positive"), "tipping_delta"])
    assert tip.loc[("rd_q95_reaches_0", "positive"), "max_shift_rd_mean"] == pytest.approx(4.0)
    assert ("rd_q95_reaches_0", "negative") not in tip.index  # no grid point below the baseline


def common_cases():
    """Five small forces sharing one CARA effect (log HR -0.7), charlie sending only the 12-month flag."""
    return simulate_cases(forces=("alpha", "bravo", "charlie", "delta", "echo"), n_per_force=120, log_hr=-0.7,
                          flag_forces=("charlie",), seed=5)


@pytest.fixture(scope="module")
def common_effect_fits():
    """No, partial and complete pooling of `common_cases`, 2 x 100 draws. Small forces are where independent wide
    force terms overfit and pooling pays."""
    cases = common_cases()
    fits = {}
    for variant in ["primary", "pooling_none", "pooling_complete"]:
        settings, pooling, _ = variant_settings(MODEL, SENSITIVITY, variant)
        _, model, idata = fit_cases(cases, settings, 5, 2, pooling)
        fits[variant] = (model, idata)
    return cases, fits


def test_loo_prefers_pooling_over_no_pooling_when_the_effect_is_common(common_effect_fits):
    _, fits = common_effect_fits
    elpds = {variant: cell_loo(model, idata) for variant, (model, idata) in fits.items()}
    n_cells = {elpd.n_data_points for elpd in elpds.values()}
    assert len(n_cells) == 1 and n_cells.pop() > 100  # same cells (hazard + binomial) in every variant
    table = loo_table(elpds, "sim").set_index("variant")
    assert table.loc["pooling_none", "rank"] == 2  # worst
    assert table.loc["pooling_none", "p_loo"] > table.loc["pooling_complete", "p_loo"]  # more free force terms
    assert np.isclose(table["weight"].sum(), 1.0)
    summary = summary_table({"pooling_loo": table.reset_index().assign(gate_passed=True)}).set_index("variant")
    assert (summary["estimand"] == "elpd_loo").all()
    assert summary.loc["primary", "mean"] == pytest.approx(table.loc["primary", "elpd_loo"])
    assert (summary["q05"] < summary["mean"]).all() and summary["note"].str.contains("over .* cells").all()


def test_pooled_summary_reports_the_known_reduction(common_effect_fits):
    _, fits = common_effect_fits
    summary = pooled_summary([fits["primary"][1]], True, "pooling", "primary", "note").set_index("estimand")
    assert list(summary.index) == ["risk_difference_per100", "tau", "pr_any_reduction"]
    rd = summary.loc["risk_difference_per100"]
    # 600 cases: the 90% interval's upper end sits at about 0 (2 x 300 draws: -0.06 and +0.29 under two builds of
    # the same model), so the direction is checked on the mean and the posterior probability, not on q95.
    assert rd["q05"] < rd["mean"] < min(rd["q95"], -3.0)
    assert summary.loc["pr_any_reduction", "mean"] > 0.9


def test_leave_one_force_out_scores_are_finite_and_prefer_borrowing(common_effect_fits):
    cases, _ = common_effect_fits
    rows = []
    for pooling, variant in [("partial", "primary"), ("none", "pooling_none")]:
        settings, _, _ = variant_settings(MODEL, SENSITIVITY, variant)
        row, _ = lofo_score(cases, "bravo", settings, pooling, seed=3, cores=2)
        rows.append({**row, "dataset": "sim", "gate_passed": True, "method": "refit"})
    scores = pd.DataFrame(rows).set_index("pooling")
    assert np.isfinite(scores["lpd"]).all() and (scores["lpd"] < 0).all()
    assert (scores["n_draws"] == DRAWS).all()
    # No pooling predicts an unseen force from its wide priors only: far worse than the hierarchy.
    assert scores.loc["partial", "lpd"] > scores.loc["none", "lpd"]
    table = lofo_table(scores.reset_index())
    total = table[table["force"] == "all"].set_index("pooling")
    assert total.loc["partial", "rank"] == 1 and total.loc["partial", "lpd"] == pytest.approx(scores.loc["partial", "lpd"])
    summary = summary_table({"lofo": table}).set_index("variant")
    assert summary.loc["partial", "estimand"] == "lofo_lpd"


def test_importance_sampled_leave_one_force_out_matches_the_refit(common_effect_fits):
    """The route without refits (psis_lofo_scores): every force scored from the one full-data fit, each with the
    Pareto k that says whether to trust it; where it does, the score is the refit's within a nat."""
    cases, fits = common_effect_fits
    settings, _, _ = variant_settings(MODEL, SENSITIVITY, "primary")
    _, idata = fits["primary"]
    cells = build_cells(cases, CellSpec.from_config(settings["cells"]))
    scores = psis_lofo_scores(cells, idata, settings, "partial").set_index("force")
    assert list(scores.index) == cells.forces
    assert scores["n_cells"].sum() == len(cells.hazard) + len(cells.binomial)
    assert (scores["n_draws"] == DRAWS).all() and np.isfinite(scores[["lpd", "pareto_k"]].to_numpy()).all()
    trusted = scores["pareto_k"].idxmin()  # five forces of 120 cases: one held out moves the rest, k 0.26-1.03
    assert scores.loc[trusted, "pareto_k"] <= 0.7
    refit, _ = lofo_score(cases, trusted, settings, "partial", seed=3, cores=2)
    assert scores.loc[trusted, "lpd"] == pytest.approx(refit["lpd"], abs=1.0)


def _force_setup(fits, variant, force):
    """One force's cells, a model on them indexed like the fit, and the fit's posterior (every 20th draw)."""
    settings, pooling, _ = variant_settings(MODEL, SENSITIVITY, variant)
    cells = build_cells(common_cases(), CellSpec.from_config(settings["cells"]))
    slot = cells.forces.index(force)
    own = force_cells(cells, force)
    model = build_model(own, settings["priors"], settings["centred"], pooling)
    posterior = fits[variant][1].posterior.sel(draw=slice(None, None, 20))
    return settings, pooling, slot, own, model, posterior


@pytest.mark.parametrize("variant", ["primary", "pooling_complete", "pooling_none"])
@pytest.mark.parametrize("force", ["alpha", "charlie"])  # charlie sends only the 12-month flag (binomial cells)
def test_new_force_integrand_is_the_models_likelihood(common_effect_fits, variant, force):
    """With a new force's terms pinned to the fit's own (a prior of SD 1e-7 about them) the integral is PyMC's log
    likelihood of the force's cells at that draw, its slope set to 0: the offsets and both cell types are right."""
    _, fits = common_effect_fits
    _, pooling, slot, own, model, posterior = _force_setup(fits, variant, force)
    data = new_force.ForceCells.of(own)
    stacked = posterior.stack(sample=("chain", "draw"))
    intercept, effect = (stacked[name].to_numpy()[slot] for name in new_force.own_term_names(pooling))
    complete = pooling == "complete"
    mean = intercept[:, None] if complete else np.column_stack([intercept, effect])
    integral = new_force.integrated_log_likelihood(
        data, *new_force.offsets(model, posterior, slot, pooling, data), mean, np.full(mean.shape, 1e-7),
        effect if complete else np.zeros(len(mean)))
    pinned = posterior.copy(deep=True)
    if "force_slope" in pinned:
        pinned["force_slope"][:, :, slot] = 0.0
    expected = cell_log_likelihood(model, az.InferenceData(posterior=pinned)).sum("cell")
    np.testing.assert_allclose(integral, expected.stack(sample=("chain", "draw")).to_numpy(), atol=1e-6)


def _brute_force_log_integral(data, hazard, flags, mean, sd):
    """log of the integral over (a, b) on a fine grid around the integrand's peak, with scipy's Poisson and binomial
    densities: an implementation independent of cara_eval.sensitivity.new_force."""
    from scipy.stats import binom, norm, poisson

    def log_integrand(a, b):
        value = norm.logpdf(a, mean[0], sd[0]) + norm.logpdf(b, mean[1], sd[1])
        if len(data.events):
            value = value + poisson.logpmf(data.events, np.exp(hazard + a[..., None] + b[..., None] * data.hazard_cara)).sum(-1)
        if len(data.k):
            risk = -np.expm1(-np.exp(flags + a[..., None] + b[..., None] * data.flag_cara))
            value = value + binom.logpmf(data.k, data.n, risk).sum(-1)
        return value

    a, b = np.meshgrid(np.linspace(-14, -2, 241), np.linspace(-4, 4, 161), indexing="ij")
    coarse = log_integrand(a, b)
    near = coarse > coarse.max() - 40
    a, b = np.meshgrid(np.linspace(a[near].min() - 0.1, a[near].max() + 0.1, 401),
                       np.linspace(b[near].min() - 0.1, b[near].max() + 0.1, 401), indexing="ij")
    cell = (a[1, 0] - a[0, 0]) * (b[0, 1] - b[0, 0])
    return float(logsumexp(log_integrand(a, b)) + np.log(cell))


@pytest.mark.parametrize("force", ["alpha", "charlie"])
def test_new_force_quadrature_matches_a_brute_force_integral(common_effect_fits, force):
    """No pooling's wide priors, small forces (120 cases): adaptive Gauss-Hermite quadrature against a dense grid, and
    its nodes against more nodes."""
    _, fits = common_effect_fits
    settings, pooling, slot, own, model, posterior = _force_setup(fits, "pooling_none", force)
    data = new_force.ForceCells.of(own)
    hazard, flags = new_force.offsets(model, posterior, slot, pooling, data)
    mean, sd, fixed = new_force.new_force_prior(posterior, settings["priors"], pooling)
    quadrature = new_force.integrated_log_likelihood(data, hazard, flags, mean, sd, fixed)
    finer = new_force.integrated_log_likelihood(data, hazard, flags, mean, sd, fixed, nodes=15)
    np.testing.assert_allclose(quadrature, finer, atol=1e-6)
    for draw in range(3):
        brute = _brute_force_log_integral(data, hazard[draw], flags[draw], mean[draw], sd[draw])
        assert quadrature[draw] == pytest.approx(brute, abs=1e-4)


def test_lofo_scores_take_the_refit_only_where_pareto_k_is_too_high():
    sampled = pd.DataFrame({"pooling": "partial", "dataset": "imp1", "force": ["a", "b", "c"],
                            "lpd": [-10.0, -20.0, -30.0], "pareto_k": [0.3, 0.9, 0.71], "n_cells": [5, 6, 7],
                            "n_draws": 100, "gate_passed": True})
    refits = pd.DataFrame({"pooling": "partial", "dataset": "imp1", "force": ["b", "c"], "lpd": [-21.0, -29.0],
                           "n_cells": [6, 7], "n_draws": 400, "gate_passed": [True, False]})
    scores = lofo_scores(sampled, refits, 0.7).set_index("force").loc[["a", "b", "c"]]
    assert scores["method"].tolist() == ["importance_sampling", "refit", "refit"]
    assert scores["lpd"].tolist() == [-10.0, -21.0, -29.0] and scores["n_draws"].tolist() == [100, 400, 400]
    assert scores.loc["c", "pareto_k"] == 0.71 and not scores.loc["c", "gate_passed"]
    with pytest.raises(ValueError, match=r"no refit for \[\{'pooling': 'partial', 'dataset': 'imp1', 'force': 'c'\}\]"):
        lofo_scores(sampled, refits[refits["force"] == "b"], 0.7)


def _run_stage(workdir, *args):
    """Snakemake on the repository's Snakefile in a temporary workdir; fails with its output."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
                           "--cores", "2", *args], cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    return proc


def _stage_workdir(tmp_path, config, cases, fits):
    """A workdir of `config` with imp1 = `cases` and each fit's draws (folder -> InferenceData) where its rule puts
    them, so one stage runs on seeded inputs."""
    config["model"]["compile_dir"] = str(REPO / ".cache" / "pytensor")
    workdir = make_workdir(tmp_path / "work", config)
    (workdir / "results" / "impute").mkdir(parents=True)
    cases.to_parquet(workdir / "results" / "impute" / "imp1.parquet")
    for folder, idata in fits.items():
        (workdir / folder).mkdir(parents=True)
        idata.to_netcdf(workdir / folder / "idata.nc")
    return workdir


@pytest.mark.parametrize("fit_draws, primary_refits", [(None, 0), (60, 2)])
def test_publication_config_plans_every_analysis(tmp_path, fit_draws, primary_refits):
    """Dry run: one fit job per (variant, dataset), one importance-sampled leave-one-force-out job per (pooling,
    dataset); the refits it asks for are known only once it has run (a checkpoint). The primary variant on an
    imputation is model_fit's own fit unless `sensitivity.fit` changes its settings (here: its draws)."""
    config = tiny_config()
    if fit_draws:
        config["sensitivity"]["fit"]["draws"] = fit_draws
    workdir = make_workdir(tmp_path / "work", config)
    publication = yaml.safe_load((REPO / "config" / "publication.yaml").read_text())
    publication["sensitivity"]["datasets"] = ["imp1", "imp2"]  # the tiny config imputes m = 2
    (workdir / "config" / "publication.yaml").write_text(yaml.safe_dump(publication))
    proc = _run_stage(workdir, "-n", "--quiet", "rules", "--configfile", "config/config.yaml",
                      "config/publication.yaml", "--", "results/sensitivity/summary.csv")
    counts = dict(re.findall(r"^(sensitivity_\w+)\s+(\d+)$", proc.stdout + proc.stderr, flags=re.M))
    # pooling_none, pooling_complete, 3 tau priors, force_trends on imp1-2; cc; mnar1_imp1 (MNAR delta 0 is imp1
    # itself: its fit is the primary model_fit's, not a sensitivity fit); primary on imp1-2 where refitted
    # PSIS-LOO only of the pooling comparison's fits: pooling_none and pooling_complete, and primary where refitted
    expected = {"sensitivity_fit": str(14 + primary_refits), "sensitivity_fit_loo": str(2 * 2 + primary_refits),
                "sensitivity_lofo_psis": str(3 * 2),
                "sensitivity_compare": "3", "sensitivity_loo": "1", "sensitivity_lofo_combine": "1",
                "sensitivity_missing_data": "1", "sensitivity_summary": "1"}
    if not primary_refits:
        expected["sensitivity_score_model_fit"] = "2"
    assert counts == expected


def test_pooling_comparison_scores_the_primary_models_own_fit_instead_of_refitting(tmp_path, common_effect_fits):
    """Where `sensitivity.fit` changes nothing (the tiny config), the pooling comparison's primary is model_fit's own
    fit: sensitivity_score_model_fit gives its gate and PSIS-LOO, no sensitivity fit repeats it."""
    cases, fits = common_effect_fits
    config = tiny_config()
    config["sensitivity"] = {**config["sensitivity"], "analyses": ["pooling"], "datasets": ["imp1"]}
    others = {f"results/sensitivity/fits/{variant}/imp1": variant for variant in ["pooling_none", "pooling_complete"]}
    workdir = _stage_workdir(tmp_path, config, cases, {"results/model/any_reoffence/imp1": fits["primary"][1]}
                             | {folder: fits[variant][1] for folder, variant in others.items()})
    for folder, variant in others.items():
        write_gate_and_loo(*fits[variant], "imp1", MODEL["gate"],
                           SimpleNamespace(gate=workdir / folder / "gate.csv", loo=workdir / folder / "loo.pkl"), variant)

    _run_stage(workdir, "--configfile", "config/config.yaml", "--rerun-triggers", "mtime", "--allowed-rules",
               "sensitivity_score_model_fit", "sensitivity_loo", "--", "results/sensitivity/pooling_loo.csv")
    assert not (workdir / "results/sensitivity/fits/primary").exists()
    gate = pd.read_csv(workdir / "results/sensitivity/model_fit_scores/imp1/gate.csv", float_precision="round_trip")
    assert gate.equals(gate_table(fits["primary"][1], "imp1", MODEL["gate"]))  # judged alone, not as 1/m
    table = pd.read_csv(workdir / "results/sensitivity/pooling_loo.csv").set_index("variant")
    assert set(table.index) == {"primary", "pooling_none", "pooling_complete"}
    assert table.loc["primary", "elpd_loo"] == pytest.approx(cell_loo(*fits["primary"]).elpd_loo)


def test_leave_one_force_out_refits_only_the_forces_importance_sampling_cannot_score(tmp_path, common_effect_fits):
    """The publication set's leave-one-force-out through its rules, on a seeded full-data fit: every force scored by
    importance sampling (a checkpoint), a refit only where Pareto k exceeds the limit, and the table says which.
    The limit is set between the forces' measured k, so both routes are taken."""
    cases, fits = common_effect_fits
    config = tiny_config()
    lofo = {**SENSITIVITY["lofo"], "poolings": ["partial"], "importance_sampling": {"thin": 1, "max_pareto_k": 0.7}}
    config["sensitivity"] = {**SENSITIVITY, "analyses": ["lofo"], "datasets": ["imp1"], "lofo": lofo}
    full_fit = "results/sensitivity/fits/primary/imp1"
    workdir = _stage_workdir(tmp_path, config, cases, {full_fit: fits["primary"][1]})
    gate_table(fits["primary"][1], "imp1", MODEL["gate"]).to_csv(workdir / full_fit / "gate.csv", index=False)
    stage = ["--configfile", "config/config.yaml", "--rerun-triggers", "mtime", "--allowed-rules",
             "sensitivity_lofo_psis", "sensitivity_lofo", "sensitivity_lofo_combine", "--"]

    _run_stage(workdir, *stage, "results/sensitivity/lofo_psis/partial/imp1.csv")
    sampled = pd.read_csv(workdir / "results/sensitivity/lofo_psis/partial/imp1.csv").set_index("force")
    limit = float(np.median(sampled["pareto_k"]))
    lofo["importance_sampling"]["max_pareto_k"] = limit
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    _run_stage(workdir, *stage, "results/sensitivity/lofo.csv")
    table = pd.read_csv(workdir / "results/sensitivity/lofo.csv")
    forces = table[table["force"] != "all"].set_index("force")
    assert sorted(forces.index) == sorted(cases["force"].unique()) == sorted(sampled.index)
    unreliable = set(sampled.index[sampled["pareto_k"] > limit])
    assert 0 < len(unreliable) < len(sampled)
    assert set(forces.index[forces["method"] == "refit"]) == unreliable
    refit_files = (workdir / "results/sensitivity/lofo/partial/imp1").glob("*.csv")
    assert {path.name.split(".")[0] for path in refit_files} == unreliable  # no refit of a trusted force
    kept = forces[forces["method"] == "importance_sampling"]
    assert (kept["lpd"] == sampled.loc[kept.index, "lpd"]).all()
    assert table.loc[table["force"] == "all", "lpd"].iloc[0] == pytest.approx(forces["lpd"].sum())


def test_default_set_runs_complete_cases_and_the_mnar_grid(tmp_path, common_effect_fits):
    """The default set through its own rules, on seeded stage inputs (simulated cases; the primary's estimands
    from a real fit): an MNAR shift that makes CARA cases' missing history worse moves the effect one way."""
    cases, fits = common_effect_fits
    config = tiny_config()
    config["imputation"]["mnar"] = {**config["imputation"]["mnar"], "deltas": [0, 1.5], "m": 1}
    config["sensitivity"] = {**SENSITIVITY, "fit": {"chains": 2, "draws": 60, "tune": 60}}  # wiring, not accuracy
    config["model"]["compile_dir"] = str(REPO / ".cache" / "pytensor")
    workdir = make_workdir(tmp_path / "work", config)
    impute = workdir / "results" / "impute"
    impute.mkdir(parents=True)
    cara = cases["arm"] == "cara"
    cases.to_parquet(impute / "cc.parquet")
    # MNAR delta 0 is imp1 itself, whose fit is the primary model's; delta 1.5 shifts CARA cases' imputed values.
    cases.to_parquet(impute / "imp1.parquet")
    cases.assign(prior_da_incidents=cases["prior_da_incidents"] + 1.5 * cara).to_parquet(impute / "mnar1.5_imp1.parquet")
    primary_fit = workdir / "results/model/any_reoffence/imp1"
    primary_fit.mkdir(parents=True)
    fits["primary"][1].to_netcdf(primary_fit / "idata.nc")
    gate_table(fits["primary"][1], "imp1", MODEL["gate"]).to_csv(primary_fit / "gate.csv", index=False)
    primary = workdir / "results/model/any_reoffence/pooled/estimands.csv"
    primary.parent.mkdir(parents=True)
    estimand_table(stacked_draws([fits["primary"][1]], ESTIMAND_VARIABLES), True).to_csv(primary, index=False)

    _run_stage(workdir, "--configfile", "config/config.yaml", "--set-threads", "sensitivity_fit=1", "--allowed-rules", "sensitivity_fit",
               "sensitivity_missing_data", "sensitivity_summary", "--", "results/sensitivity/summary.csv")
    results = workdir / "results" / "sensitivity"
    table = pd.read_csv(results / "missing_data.csv")
    assert list(dict.fromkeys(table["variant"])) == ["multiple_imputation", "complete_case", "mnar_delta_0",
                                                     "mnar_delta_1.5"]
    rd = table[table["estimand"] == "risk_difference_per100"].set_index("variant")
    assert (rd["q05"] < rd["mean"]).all() and (rd["mean"] < rd["q95"]).all()
    assert rd.loc["multiple_imputation", "mean"] == pytest.approx(
        pd.read_csv(primary).query("estimand == 'risk_difference_per100' and scope == 'pooled'")["mean"].iloc[0])
    # Worse histories for CARA cases raise their counterfactual risk: the effect grows with delta.
    mnar = rd.loc[["mnar_delta_0", "mnar_delta_1.5"], "mean"].to_numpy()
    assert mnar[0] > mnar[1]
    grid = mnar_grid(table)
    assert list(grid["delta"]) == [0.0, 1.5]
    tip = pd.read_csv(results / "tipping_point.csv").set_index(["criterion", "side"])
    assert tip.loc[("rd_q95_reaches_0", "positive"), "max_shift_rd_mean"] == pytest.approx(mnar[0] - mnar[1])
    expected = crossing(grid["delta"], grid["pr_any_reduction"], SENSITIVITY["tipping_prob_reduction"])
    assert tip.loc[("pr_any_reduction_crosses", "positive"), "tipping_delta"] == pytest.approx(expected, nan_ok=True)
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["analysis"]) == {"missing_data"} and summary["gate_passed"].dtype == bool
    gates = sorted(g.parent.name for g in (results / "fits" / "primary").glob("*/gate.csv"))
    assert gates == ["cc", "mnar1.5_imp1"]  # delta 0 was not refitted
    assert (results / "summary.png").stat().st_size > 5000
