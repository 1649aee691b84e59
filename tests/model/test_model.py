"""The primary effectiveness model: cells, censoring, recovery of a known effect, gate, estimand tables."""

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import yaml
from model_simulation import simulate_cases
from scipy import stats

from cara_eval.model.cells import CellSpec, build_cells, row_level_cells
from cara_eval.model.checks import PRIOR_PREDICTIVE_QUANTITIES, posterior_predictive_draws, prior_predictive
from cara_eval.model.effectiveness import build_model, derive_seed, fit_cases, sample
from cara_eval.model.estimands import ESTIMANDS, estimand_table, forest_table, stacked_draws
from cara_eval.model.gate import gate_summary, gate_table, pooled_gate
from cara_eval.model.naive import naive_before_after, truth_check

CONFIG = yaml.safe_load(open("config/config.yaml"))["model"]
PRIORS = CONFIG["priors"]
SMALL_DATA_CENTRED = yaml.safe_load(open("tests/config_tiny/config.yaml"))["model"]["centred"]  # few small forces
SHORT_GATE = {"max_r_hat": 1.05, "min_ess_bulk": 100, "min_ess_tail": 100, "max_divergences": 0}


def _case(force="alpha", arm="cara", followup=365, event_day=None, source="events", together=True, dash="standard"):
    event = event_day is not None and event_day <= followup
    return {
        "case_id": "x", "force": force, "arm": arm, "comparison_type": None if arm == "cara" else "historical",
        "period": 2020, "age": 33.0, "sex": "male", "prior_da_incidents": 0.0, "dash_risk": dash,
        "together_at_index": together, "followup_days": followup, "outcome_source": source,
        "any_reoffence": event, "days_to_first": float(event_day) if event and source == "events" else np.nan,
        "event_observed": event,
    }


def test_censored_case_contributes_exposure_not_event():
    cases = pd.DataFrame([_case(followup=100), _case(event_day=30), _case(event_day=200), _case(arm="comparison")])
    hazard = build_cells(cases, CellSpec()).hazard.query("cara == 1").set_index("interval")
    # [0, 90): 90 (censored case) + 30 (event on day 30) + 90; [90, 365): 10 (censored at day 100) + 110.
    assert hazard.loc["0-90", "exposure"] == 210 and hazard.loc["0-90", "events"] == 1
    assert hazard.loc["90-365", "exposure"] == 120 and hazard.loc["90-365", "events"] == 1


def test_flag_force_becomes_binomial_cells_with_observed_days():
    cases = pd.DataFrame(
        [_case(source="flag", event_day=10), _case(source="flag"), _case(source="flag", followup=200),
         _case(source="flag", arm="comparison")]
    )
    cells = build_cells(cases, CellSpec())
    assert cells.hazard.empty
    full = cells.binomial.query("cara == 1").set_index("followup_days")
    assert (full.loc[365, "n"], full.loc[365, "k"]) == (2, 1)
    assert full.loc[200, ["days_0-90", "days_90-365"]].tolist() == [90, 110]


def test_cells_keep_sufficient_statistics_of_every_case():
    cases = simulate_cases(n_per_force=300, seed=3)
    cells = build_cells(cases, CellSpec())
    assert cells.hazard["events"].sum() == cases["event_observed"].sum()
    assert cells.standard["n_cara"].sum() == (cases["arm"] == "cara").sum()
    assert len(cells.hazard) < 2 * len(cases)  # coarsening: fewer cells than case-intervals


def test_dash_risk_level_is_a_cell_covariate_of_its_own():
    # Where CARA follows case mix, medium-risk offenders get it less often and reoffend more: without the DASH level in
    # the cells, calibration credited that difference to CARA (-0.46 per 100 with no effect at all).
    cases = pd.DataFrame([_case(event_day=30), _case(dash="medium"), _case(arm="comparison", dash="medium"),
                          _case(arm="comparison", event_day=200)])
    cells = build_cells(cases, CellSpec())
    assert "dash_medium" in cells.covariates
    first_interval = cells.hazard.query("interval == '0-90'").set_index(["cara", "dash_risk"])
    assert first_interval.loc[(1, "standard"), "events"] == 1 and first_interval.loc[(1, "medium"), "events"] == 0
    medium = cells.design(cells.hazard)[:, cells.covariates.index("dash_medium")]
    assert (medium == (cells.hazard["dash_risk"] == "medium")).all() and 0 < medium.sum() < len(medium)
    unrecorded = build_cells(cases.drop(columns="dash_risk"), CellSpec())
    assert "dash_medium" not in unrecorded.covariates and set(unrecorded.hazard["dash_risk"]) == {"standard"}


def test_missing_covariate_is_refused():
    cases = simulate_cases(n_per_force=50, seed=1)
    cases.loc[3, "age"] = np.nan
    with pytest.raises(ValueError, match="age"):
        build_cells(cases, CellSpec())


def test_naive_before_after_is_crude_difference_of_known_status_cases():
    cases = pd.DataFrame(
        [_case(event_day=10), _case(), _case(arm="comparison", event_day=5), _case(arm="comparison", event_day=50),
         _case(arm="comparison", followup=100)]  # unknown 12-month status: left out
    )
    naive = naive_before_after(cases).set_index(["scope", "level"])
    assert naive.loc[("pooled", ""), "estimate"] == pytest.approx(100 * (0.5 - 1.0))


def test_seeds_are_stable_and_distinct_per_fit():
    assert derive_seed(1, "any_reoffence", "imp1") == derive_seed(1, "any_reoffence", "imp1")
    assert derive_seed(1, "any_reoffence", "imp1") != derive_seed(1, "any_reoffence", "imp2")


@pytest.mark.parametrize(("pooling", "covariates", "flag_forces"), [
    *((pooling, covariates, ("charlie",)) for pooling in ("partial", "none", "complete") for covariates in (True, False)),
    ("partial", True, ("alpha", "bravo", "charlie")),
])
def test_grouped_likelihood_is_the_cells_log_density_and_gradient(pooling, covariates, flag_forces):
    # Mixed data: event forces and a flag-only force, whose flag cells' cases without a flag join the grouped Poisson
    # sum; separated and together cases. Then flag-only forces alone: no event-level cell at all.
    cases = simulate_cases(n_per_force=300, log_hr=-0.3, flag_forces=flag_forces, seed=5)
    if not covariates:  # every case alike on every covariate: one pattern, beta absent
        cases = cases.assign(age=33.0, sex="male", prior_da_incidents=0.0, together_at_index=False)
    cells = build_cells(cases, CellSpec())
    assert bool(cells.covariates) == covariates
    models = {likelihood: build_model(cells, PRIORS, SMALL_DATA_CENTRED, pooling, likelihood)
              for likelihood in ("cells", "grouped")}
    assert (len(cells.hazard) == 0) == (len(flag_forces) == 3)
    assert {"events_grouped", "flags_with_events"} <= set(models["grouped"].named_vars)
    assert not {"events", "flag_events"} & set(models["grouped"].named_vars)
    assert [v.name for v in models["cells"].free_RVs] == [v.name for v in models["grouped"].free_RVs]
    start = models["cells"].initial_point()
    rng = np.random.default_rng(2)
    for point in (start, {name: value + rng.normal(0, 0.3, np.shape(value)) for name, value in start.items()}):
        logp = {k: m.compile_logp()(point) for k, m in models.items()}
        gradient = {k: m.compile_dlogp()(point) for k, m in models.items()}
        assert logp["grouped"] == pytest.approx(logp["cells"], rel=1e-12)
        np.testing.assert_allclose(gradient["grouped"], gradient["cells"], rtol=1e-9, atol=1e-9)


def test_build_model_refuses_an_unknown_likelihood():
    cells = build_cells(simulate_cases(n_per_force=50, seed=1), CellSpec())
    with pytest.raises(ValueError, match="likelihood must be one of"):
        build_model(cells, PRIORS, SMALL_DATA_CENTRED, likelihood="rows")


def test_grouped_fit_returns_the_per_cell_model_for_scoring():
    settings = {**CONFIG, "centred": SMALL_DATA_CENTRED, "likelihood": "grouped", "chains": 1, "draws": 20, "tune": 20}
    cells, model, idata = fit_cases(simulate_cases(n_per_force=100, flag_forces=("charlie",), seed=4), settings, seed=1)
    assert {"events", "flag_events"} <= set(model.named_vars) and "events_grouped" not in model.named_vars
    assert idata.posterior.sizes["draw"] == 20 and "risk_difference_per100" in idata.posterior


def test_deterministics_after_sampling_equal_pymcs_draw_by_draw_evaluation():
    # The sampler stores only the free variables; every Deterministic is computed afterwards in one vectorised pass.
    # Numba backend here (README's advice for national data); the tiny config's tests run the shipped JAX one.
    # PyMC's own evaluation, draw by draw, is the reference.
    cells = build_cells(simulate_cases(n_per_force=150, flag_forces=("charlie",), seed=6), CellSpec())
    model = build_model(cells, PRIORS, SMALL_DATA_CENTRED, likelihood="grouped")
    posterior = sample(model, "nutpie", 2, 30, 30, 6, cores=2).posterior
    assert {v.name for v in model.deterministics} <= set(posterior.data_vars)
    reference = pm.compute_deterministics(posterior.isel(draw=slice(0, 3)), model=model, progressbar=False)
    for name in reference.data_vars:
        assert posterior[name].dims == reference[name].dims, name
        np.testing.assert_allclose(posterior[name].isel(draw=slice(0, 3)), reference[name], rtol=1e-10, err_msg=name)
    assert list(posterior["risk_difference_per100_force"]["force"].values) == list(cells.forces)
    assert list(posterior["risk_ratio_relationship"]["relationship"].values) == ["separated", "together"]


@pytest.fixture(scope="module", params=[11, 12, 13])
def known_effect_fit(request):
    """Three forces (one flag-only), true log HR -0.7: a large reduction the model must recover."""
    cases = simulate_cases(n_per_force=500, log_hr=-0.7, flag_forces=("charlie",), seed=request.param)
    cells = build_cells(cases, CellSpec())
    model = build_model(cells, PRIORS, SMALL_DATA_CENTRED)
    idata = sample(model, "nutpie_jax", 4, 300, 300, request.param, cores=2, target_accept=0.95)
    return cases, cells, idata


@pytest.mark.slow
def test_low_rank_mass_matrix_is_nutpies_and_reaches_the_same_posterior():
    """Calibration fits use nutpie's low-rank mass matrix (config `calibration.fit`): same posterior as diagonal."""
    cases = simulate_cases(n_per_force=500, log_hr=-0.7, flag_forces=("charlie",), seed=11)
    model = build_model(build_cells(cases, CellSpec()), PRIORS, SMALL_DATA_CENTRED)
    # 2 x 600 draws: at 2 x 300 force_intercept_sd's bulk ESS was 83-110 over two code versions, at the 100 below
    fits = {m: sample(model, "nutpie_jax", 2, 600, 300, 11, cores=2, target_accept=0.95, mass_matrix=m)
            for m in ("diagonal", "low_rank")}
    assert "num_eigenvalues" in fits["low_rank"].sample_stats and "num_eigenvalues" not in fits["diagonal"].sample_stats
    means = {m: float(idata.posterior["mu_log_hr"].mean()) for m, idata in fits.items()}
    sd = float(fits["diagonal"].posterior["mu_log_hr"].std())
    assert abs(means["low_rank"] - means["diagonal"]) < 0.25 * sd  # Monte Carlo error of 1,200 draws is ~0.04 sd
    gate = gate_table(fits["low_rank"], "low_rank", SHORT_GATE)
    assert (gate["r_hat"] <= SHORT_GATE["max_r_hat"]).all() and (gate["ess_bulk"] >= SHORT_GATE["min_ess_bulk"]).all()
    with pytest.raises(ValueError, match="low_rank needs a nutpie sampler, not 'pymc'"):
        sample(model, "pymc", 2, 10, 10, 11, mass_matrix="low_rank")


@pytest.mark.slow
def test_a_fit_with_divergences_is_sampled_again_at_the_next_target_accept(caplog):
    """config `target_accept` as a list: a higher value only for fits that diverge at the lower one."""
    cases = simulate_cases(n_per_force=300, log_hr=-0.7, seed=5)
    model = build_model(build_cells(cases, CellSpec()), PRIORS, SMALL_DATA_CENTRED)
    careless = sample(model, "nutpie_jax", 2, 150, 150, 5, cores=2, target_accept=0.3)
    divergences = int(careless.sample_stats["diverging"].sum())
    assert divergences > 0 and careless.sample_stats.attrs["target_accept"] == 0.3  # what the ladder must mend
    laddered = sample(model, "nutpie_jax", 2, 150, 150, 5, cores=2, target_accept=[0.3, 0.99])
    assert laddered.sample_stats.attrs["target_accept"] == 0.99
    assert int(laddered.sample_stats["diverging"].sum()) < divergences
    assert f"{divergences} divergences at target_accept 0.3: sampled again at 0.99" in caplog.text
    assert "risk_difference_per100" in laddered.posterior  # the Deterministics of the fit that was kept
    with pytest.raises(ValueError, match=r"target_accept \[0.99, 0.3\] must increase"):
        sample(model, "nutpie_jax", 2, 10, 10, 5, target_accept=[0.99, 0.3])


@pytest.mark.slow
def test_known_large_effect_is_recovered(known_effect_fit):
    _, _, idata = known_effect_fit
    draws = stacked_draws([idata], ["mu_log_hr", "risk_difference_per100", "risk_ratio", "risk_ratio_force",
                                    "hazard_ratio_att", "rmst_difference_days"])
    table = estimand_table(draws, gate_passed=True).set_index(["estimand", "scope", "level"])
    rd = table.loc[("risk_difference_per100", "pooled", "")]
    assert rd["q95"] < 0 and rd["prob_reduction"] > 0.95
    # Time to first reoffence from the same fit: fewer hazards, so more reoffence-free days within the year.
    assert table.loc[("hazard_ratio_att", "pooled", ""), "q95"] < 1
    assert 0 < table.loc[("rmst_difference_days", "pooled", ""), "q05"] < 365
    log_hr = table.loc[("log_hr", "pooled", "")]
    assert log_hr["q05"] < -0.7 < log_hr["q95"]
    assert table.loc[("risk_ratio", "force", "charlie"), "q95"] < 1  # the flag-only force is informed


@pytest.mark.slow
def test_every_estimand_is_in_the_tables(known_effect_fit):
    _, cells, idata = known_effect_fit
    draws = stacked_draws([idata, idata], [v for _, _, v, _ in ESTIMANDS])
    assert draws.sizes["sample"] == 2 * 4 * 300
    table = estimand_table(draws, gate_passed=False)
    assert {(e, s) for e, s, _, _ in ESTIMANDS} <= set(zip(table["estimand"], table["scope"]))
    assert set(table.loc[table["scope"] == "force", "level"]) == set(cells.forces)
    assert set(table.loc[table["scope"] == "relationship", "level"]) == {"together", "separated"}
    probabilities = table.set_index("estimand").loc[["pr_any_reduction", "pr_reduction_ge_10pct"], "mean"]
    assert probabilities.between(0, 1).all() and probabilities.iloc[0] >= probabilities.iloc[1]
    assert not table["gate_passed"].any()
    n_cases = cells.case_counts.groupby("force")["n_cases"].sum()
    forest = forest_table(draws, draws, n_cases)
    assert len(forest) == 2 * len(cells.forces) + 2
    assert forest.set_index("method").loc["pooled", "n_cases"] == 1500


@pytest.mark.slow
def test_gate_passes_a_healthy_fit_and_flags_a_broken_one(known_effect_fit):
    cases, cells, idata = known_effect_fit
    assert gate_table(idata, "healthy", SHORT_GATE)["passed"].all()
    broken = sample(build_model(cells, PRIORS, SMALL_DATA_CENTRED), "pymc", chains=1, draws=20, tune=0, seed=1)
    gate = gate_table(broken, "broken", SHORT_GATE)
    assert not gate["passed"].any()  # one chain: no R-hat; 20 draws: no ESS
    summary = gate_summary([gate_table(idata, "imp1", SHORT_GATE), gate]).set_index("dataset")
    assert summary.loc["imp1", "passed"] and not summary.loc["broken", "passed"]


def test_gate_judges_r_hat_unrounded():
    # ArviZ's summary rounds R-hat to two decimals: 1.0137 would read 1.01 and pass a 1.01 limit.
    draws = np.random.default_rng(0).normal(size=(4, 1000))
    draws[0] += 0.4  # one chain shifted by 0.4 SD
    idata = az.from_dict(posterior={"tau": draws}, sample_stats={"diverging": np.zeros((4, 1000), dtype=bool)})
    r_hat = float(az.rhat(idata)["tau"])
    assert 1.0105 < r_hat < 1.015
    gate = gate_table(idata, "shifted", {**SHORT_GATE, "max_r_hat": 1.01})
    assert gate["r_hat"].iloc[0] == r_hat and not gate["passed"].any()


@pytest.mark.slow
def test_truth_check_reports_coverage_and_naive_bias(known_effect_fit):
    cases, _, idata = known_effect_fit
    table = estimand_table(stacked_draws([idata], ["risk_difference_per100"]), gate_passed=True)
    mean, q05, q95 = table.iloc[0][["mean", "q05", "q95"]]
    naive_table = naive_before_after(cases)
    crude = naive_table.loc[naive_table["scope"].eq("pooled"), "estimate"].iloc[0]
    for truth_value, covered in [((q05 + q95) / 2, True), (q95 + 0.1, False), (q05 - 0.1, False)]:
        truth = {"outcomes": {"any_reoffence": {"pooled": {"risk_difference_per100": truth_value}}}}
        check = truth_check(table, naive_table, truth, "any_reoffence").set_index("method")
        model = check.loc["bayes_hierarchical"]
        assert bool(model["covered"]) is covered
        assert model["bias"] == pytest.approx(mean - truth_value)
        naive = check.loc["naive_before_after"]
        assert naive["estimate"] == crude and naive["bias"] == pytest.approx(crude - truth_value)


def test_row_level_cells_are_one_bernoulli_cell_per_case():
    cases = simulate_cases(n_per_force=40, seed=2)
    rows = row_level_cells(cases, CellSpec())
    assert len(rows.binomial) == len(cases) and (rows.binomial["n"] == 1).all()
    assert rows.binomial["k"].sum() == cases["any_reoffence"].sum()


def test_pooled_gate_sums_ess_over_imputations_and_keeps_each_fits_r_hat():
    """Each of m fits carries 1/m of the ESS; the pooled draws must reach the full thresholds."""
    thresholds = {"max_r_hat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0}

    def fit_gate(dataset, ess, r_hat=1.0, share=1 / 3):
        table = pd.DataFrame({"dataset": dataset, "parameter": ["mu_log_hr", "tau"], "r_hat": r_hat,
                              "ess_bulk": ess, "ess_tail": ess, "divergences": 0})
        table["passed"] = (table["r_hat"] <= 1.01) & (table["ess_bulk"] >= share * 400)
        return table

    enough = pooled_gate([fit_gate(f"imp{k}", 150) for k in (1, 2, 3)], thresholds).set_index("parameter")
    assert enough["passed"].all() and (enough["ess_bulk"] == 450).all()
    assert enough["dataset"].iloc[0] == "pooled (3 fits)"
    # Fits that each reach a quarter of the ESS (m = 4) but only three of them: the pooled draws fall short.
    short = pooled_gate([fit_gate(f"imp{k}", 110, share=1 / 4) for k in (1, 2, 3)], thresholds)
    assert not short["passed"].any() and (short["ess_bulk"] == 330).all()
    unmixed = pooled_gate([fit_gate("imp1", 1000, r_hat=1.05), fit_gate("imp2", 1000)], thresholds)
    assert not unmixed["passed"].any() and (unmixed["r_hat"] == 1.05).all()  # ESS cannot buy back a bad fit


def test_prior_predictive_draws_the_priors_and_computes_each_quantity_from_the_draws():
    cells = build_cells(simulate_cases(n_per_force=100, flag_forces=("charlie",), seed=7), CellSpec())
    model = build_model(cells, PRIORS, SMALL_DATA_CENTRED, likelihood="grouped")
    table, prior = prior_predictive(model, 400, seed=3)
    assert list(table["quantity"]) == PRIOR_PREDICTIVE_QUANTITIES
    assert prior.prior.sizes["draw"] == 400
    # tau is drawn from its HalfNormal prior; the quantities are functions of the same draws
    tau = prior.prior["tau"].to_numpy().ravel()
    assert stats.kstest(tau, stats.halfnorm(scale=PRIORS["tau"]["sigma"]).cdf).pvalue > 0.01
    risks = {name: prior.prior[name].to_numpy().ravel() for name in ("risk_without_cara", "risk_cara")}
    assert all(((risk > 0) & (risk < 1)).all() for risk in risks.values())
    np.testing.assert_allclose(prior.prior["risk_difference_per100"].to_numpy().ravel(),
                               100 * (risks["risk_cara"] - risks["risk_without_cara"]), rtol=1e-9)
    again, _ = prior_predictive(model, 400, seed=3)
    pd.testing.assert_frame_equal(table, again)  # same seed, same draws


def test_posterior_predictive_draws_follow_pymcs_posterior_predictive():
    # Same distributions as pm.sample_posterior_predictive, drawn at every draw of a posterior (here: prior draws)
    cells = build_cells(simulate_cases(n_per_force=100, flag_forces=("charlie",), seed=8), CellSpec())
    model = build_model(cells, PRIORS, SMALL_DATA_CENTRED)
    with model:  # one prior draw, repeated: the model's own dims and coordinates, so PyMC resamples nothing
        one = pm.sample_prior_predictive(draws=1, var_names=[v.name for v in model.free_RVs], random_seed=2).prior
    posterior = one.isel(draw=[0] * 1000).assign_coords(draw=np.arange(1000))
    ours = posterior_predictive_draws(model, posterior, ["events", "flag_events"], seed=5)
    with model:
        reference = pm.sample_posterior_predictive(posterior, var_names=["events", "flag_events"], random_seed=5,
                                                   progressbar=False).posterior_predictive
    for name in ("events", "flag_events"):
        theirs = reference[name].isel(chain=0).to_numpy()
        assert ours[name].shape == theirs.shape
        se = np.sqrt((ours[name].var(axis=0) + theirs.var(axis=0)) / 1000) + 1e-9  # one fixed draw: same distribution
        assert (np.abs(ours[name].mean(axis=0) - theirs.mean(axis=0)) < 5 * se + 1e-6).mean() > 0.99, name
    again = posterior_predictive_draws(model, posterior, ["events", "flag_events"], seed=5)
    assert all(np.array_equal(ours[name], again[name]) for name in ours)
