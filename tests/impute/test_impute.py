"""Imputation of missing covariates: bias reduction under MAR, structural fields, schema, determinism."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cara_eval.common.schema import CASE_FIELDS, CASES_SCHEMA
from cara_eval.impute.chained import (
    TRACE_COLUMNS,
    ChainedImputer,
    ImputationSettings,
    complete_cases,
    impute,
    nelson_aalen_at_followup,
    rubin_pool,
)
from cara_eval.impute.fields import ImputationInputError, structural_pairs
from cara_eval.impute.plots import plot_convergence, plot_observed_vs_imputed
from cara_eval.impute.stage import complete_case_dataset, diagnose, imputed_dataset

FIELDS = ("ethnicity", "prior_da_incidents", "together_at_index", "dash_risk", "age", "sex", "victim_sex",
          "relationship")
TRUE_LOG_OR_TREATED = -0.4
SETTINGS = ImputationSettings(fields=FIELDS, iterations=5)


def make_cases(n: int, seed: int, forces=("alpha", "bravo", "charlie", "delta")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical cases with a known MAR mechanism; returns (with missing covariates, fully observed).

    prior_da_incidents goes missing far more often for CARA cases that reoffended (MAR given arm and
    outcome), which biases the complete-case log odds ratio of treatment by about log(0.3 / 0.9).
    """
    rng = np.random.default_rng(seed)
    force = rng.choice(forces, size=n)
    treated = rng.random(n) < 0.5
    age = np.clip(rng.normal(35, 10, n), 18, 80).round()
    prior = rng.poisson(np.exp(0.2 + 0.02 * (age - 35)))
    relationship = rng.choice(["current_partner", "ex_partner", "family"], size=n, p=[0.5, 0.35, 0.15])
    together = np.where(relationship == "current_partner", rng.random(n) < 0.7, rng.random(n) < 0.1)
    linear = -1.0 + TRUE_LOG_OR_TREATED * treated + 0.35 * prior - 0.02 * (age - 35) + 0.2 * together
    event = rng.random(n) < 1 / (1 + np.exp(-linear))
    index_date = pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 7 * 365, n), unit="D")
    days_to_first = np.where(event, rng.integers(1, 366, n), np.nan)
    full = pd.DataFrame({
        "case_id": [f"c{i:06d}" for i in range(n)],
        "offender_pid": [f"o{i:06d}" for i in range(n)],
        "victim_pid": pd.array([f"v{i:06d}" for i in range(n)], dtype="string"),
        "force": force,
        "arm": np.where(treated, "cara", "comparison"),
        "comparison_type": pd.array(np.where(treated, None, "historical"), dtype="string"),
        "index_date": index_date,
        "disposal_date": index_date + pd.Timedelta(days=7),
        "period": index_date.year.astype(int),
        "offence_type": rng.choice(["common_assault", "criminal_damage", "harassment"], size=n),
        "dash_risk": np.where(rng.random(n) < 0.25 + 0.05 * prior, "medium", "standard"),
        "age": age,
        "sex": np.where(rng.random(n) < 0.85, "male", "female"),
        "ethnicity": rng.choice(["white", "black", "asian", "mixed", "other"], size=n, p=[.75, .08, .1, .04, .03]),
        "prior_da_incidents": prior.astype(float),
        "victim_sex": np.where(rng.random(n) < 0.85, "female", "male"),
        "relationship": relationship,
        "together_at_index": pd.array(together, dtype="boolean"),
        "workshop1_attended": pd.array(np.where(treated, True, None), dtype="boolean"),
        "workshop2_attended": pd.array(np.where(treated, True, None), dtype="boolean"),
        "completed": pd.array(np.where(treated, True, None), dtype="boolean"),
        "breached": pd.array(np.where(treated, False, None), dtype="boolean"),
        "victim_contacted": pd.array(np.where(rng.random(n) < 0.2, None, rng.random(n) < 0.6), dtype="boolean"),
        "victim_consulted": pd.array(np.where(rng.random(n) < 0.3, None, rng.random(n) < 0.5), dtype="boolean"),
        "followup_days": np.full(n, 365),
        "outcome_source": "events",
        "any_reoffence": pd.array(event, dtype="boolean"),
        "reoffence_count": event.astype(float),
        "harm": event * 10.0,
        "days_to_first": days_to_first,
        "event_observed": pd.array(event, dtype="boolean"),
    })
    full = full[CASE_FIELDS]
    for column in ("force", "arm", "offence_type", "dash_risk", "sex", "ethnicity", "victim_sex", "relationship"):
        full[column] = full[column].astype("string")
    cases = full.copy()
    prior_missing = rng.random(n) < np.where(treated & event, 0.7, 0.1)
    cases.loc[prior_missing, "prior_da_incidents"] = np.nan
    cases.loc[rng.random(n) < 0.1 + 0.2 * (age < 30), "ethnicity"] = pd.NA
    cases.loc[rng.random(n) < 0.05, "age"] = np.nan
    cases.loc[rng.random(n) < 0.1, "together_at_index"] = pd.NA
    cases.loc[rng.random(n) < 0.05, "relationship"] = pd.NA
    return cases, full


def treated_log_odds_ratio(data: pd.DataFrame) -> tuple[float, float]:
    """The analysis model: logistic regression of any reoffence on treatment, prior incidents and age."""
    x = sm.add_constant(pd.DataFrame({
        "treated": (data["arm"] == "cara").astype(float),
        "prior": data["prior_da_incidents"].astype(float),
        "age": data["age"].astype(float),
    }))
    fit = sm.Logit(data["any_reoffence"].astype(float), x).fit(disp=0)
    return float(fit.params["treated"]), float(fit.bse["treated"] ** 2)


def no_structure() -> pd.DataFrame:
    return pd.DataFrame(columns=["force", "field", "reason", "n_cases", "imputed_from"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rubin_pooled_estimate_is_closer_to_full_data_than_complete_case(seed):
    cases, full = make_cases(2000, seed)
    full_estimate, _ = treated_log_odds_ratio(full)
    complete_estimate, _ = treated_log_odds_ratio(complete_cases(cases, FIELDS))
    fits = [treated_log_odds_ratio(impute(cases, SETTINGS, no_structure(), seed=100 * seed + k).data)
            for k in range(1, 6)]
    pooled, total_variance = rubin_pool(*zip(*fits))
    print(f"seed {seed}: full {full_estimate:.3f} complete-case {complete_estimate:.3f} "
          f"MI {pooled:.3f} (se {total_variance ** 0.5:.3f})")
    assert abs(pooled - full_estimate) < abs(complete_estimate - full_estimate) / 3
    assert abs(pooled - full_estimate) < 2 * total_variance ** 0.5


SECTION = {
    "m": 5, "iterations": 4, "fields": list(FIELDS), "pmm_donors": 5, "max_fit_rows": 200_000,
    "force_level_components": 2, "logit_prior_sd": 2.5, "warn_share_missing": 0.3, "publication_m_structural": 100,
    "mnar": {"field": "prior_da_incidents", "deltas": [0, 1.0], "m": 1},
}


def with_structural_ethnicity(cases: pd.DataFrame, force: str = "delta") -> pd.DataFrame:
    """One force that never records ethnicity."""
    cases = cases.copy()
    cases.loc[cases["force"] == force, "ethnicity"] = pd.NA
    return cases


def test_imputed_dataset_fills_only_covariates_and_passes_the_schema():
    cases, _ = make_cases(800, 4)
    result = imputed_dataset(cases, no_structure(), SECTION, seed=11, k=1)
    CASES_SCHEMA.validate(result.data)
    assert result.data[list(FIELDS)].notna().all().all()
    untouched = [c for c in CASE_FIELDS if c not in FIELDS]
    pd.testing.assert_frame_equal(result.data[untouched], cases[untouched])
    for field in FIELDS:
        observed = cases[field].notna()
        assert (result.data.loc[observed, field] == cases.loc[observed, field]).all(), field
    # Predictive mean matching draws counts from observed counts: whole numbers inside the observed range.
    prior = result.data["prior_da_incidents"]
    assert (prior == prior.round()).all() and prior.max() <= cases["prior_da_incidents"].max()
    assert set(result.data["ethnicity"]) <= {"white", "black", "asian", "mixed", "other"}


def test_same_seed_gives_identical_files_and_other_k_differs(tmp_path):
    cases, _ = make_cases(600, 5)
    paths = []
    for run in ("a", "b"):
        path = tmp_path / f"{run}.parquet"
        imputed_dataset(cases, no_structure(), SECTION, seed=11, k=2).data.to_parquet(path, index=False)
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    other = imputed_dataset(cases, no_structure(), SECTION, seed=11, k=3).data
    assert not other["prior_da_incidents"].equals(pd.read_parquet(paths[0])["prior_da_incidents"])


def test_structural_field_is_imputed_from_other_forces_and_flagged():
    cases, full = make_cases(1500, 6)
    cases = with_structural_ethnicity(cases)
    pairs = structural_pairs(cases, FIELDS, {"bravo": ["victim_consulted"]})
    assert pairs[["force", "field", "reason"]].values.tolist() == [["delta", "ethnicity", "all_missing"]]
    assert pairs["imputed_from"].iat[0] == "alpha;bravo;charlie"
    declared = structural_pairs(cases, FIELDS, {"delta": ["ethnicity"]})
    assert declared["reason"].tolist() == ["not_supplied"]

    result = imputed_dataset(cases, pairs, SECTION, seed=11, k=1)
    in_delta = result.data["force"] == "delta"
    assert result.data.loc[in_delta, "ethnicity"].notna().all()
    # Same ethnicity mix in every force by construction: the imputed mix should be close to the true one.
    imputed_white = (result.data.loc[in_delta, "ethnicity"] == "white").mean()
    true_white = (full.loc[in_delta, "ethnicity"] == "white").mean()
    assert abs(imputed_white - true_white) < 0.1


def test_structural_field_model_has_no_force_dummies():
    cases, _ = make_cases(600, 7)
    cases = with_structural_ethnicity(cases)
    pairs = structural_pairs(cases, FIELDS, {})
    imputer = ChainedImputer(cases, ImputationSettings.from_config(SECTION), pairs)
    completed = {f: imputer._initial_fill(f, np.random.default_rng(0)) for f in FIELDS}
    ethnicity_columns = list(imputer._design("ethnicity", completed).columns)
    assert not any(c.startswith("force_") and not c.startswith("force_pc") for c in ethnicity_columns)
    # Four forces, three recording ethnicity: at most one force-level component (recording forces - 2).
    assert [c for c in ethnicity_columns if c.startswith("force_pc")] == ["force_pc1"]
    assert "treated:together" in ethnicity_columns
    assert any(c.startswith("force_") for c in imputer._design("age", completed).columns)


def test_mnar_delta_zero_reproduces_the_imputation_and_delta_shifts_imputed_values():
    cases, _ = make_cases(800, 8)
    primary = imputed_dataset(cases, no_structure(), SECTION, seed=11, k=1).data
    unshifted = imputed_dataset(cases, no_structure(), SECTION, seed=11, k=1, delta=0.0).data
    shifted = imputed_dataset(cases, no_structure(), SECTION, seed=11, k=1, delta=1.0).data
    pd.testing.assert_frame_equal(primary, unshifted)
    missing = cases["prior_da_incidents"].isna()
    observed_equal = shifted.loc[~missing, "prior_da_incidents"].equals(primary.loc[~missing, "prior_da_incidents"])
    assert observed_equal
    shift = shifted.loc[missing, "prior_da_incidents"].mean() - primary.loc[missing, "prior_da_incidents"].mean()
    assert 0.8 < shift < 1.2


def test_binary_mnar_shift_moves_the_log_odds():
    cases, _ = make_cases(1500, 9)
    section = {**SECTION, "mnar": {"field": "together_at_index", "deltas": [2.0], "m": 1}}
    missing = cases["together_at_index"].isna()
    shares = [imputed_dataset(cases, no_structure(), section, seed=3, k=1, delta=d).data.loc[missing,
              "together_at_index"].astype(float).mean() for d in (0.0, 2.0)]
    assert shares[1] > shares[0] + 0.15


def test_field_no_force_records_is_left_empty_and_said_so():
    cases, _ = make_cases(300, 10)
    cases["victim_sex"] = pd.NA
    diagnostics = diagnose(cases, {}, SECTION)
    assert "victim_sex" not in diagnostics.fields and "victim_sex" not in set(diagnostics.missingness["field"])
    warning = diagnostics.warnings.set_index("field").loc["victim_sex", "message"]
    assert warning == "victim_sex is recorded by no force: not imputed, and the models leave it out"
    imputed = imputed_dataset(cases, diagnostics.structural, SECTION, seed=1, k=1).data
    assert imputed["victim_sex"].isna().all() and imputed[diagnostics.fields].notna().all().all()
    assert len(complete_case_dataset(cases, SECTION)) > 0
    with pytest.raises(ImputationInputError, match="outcome or process measure"):
        diagnose(cases, {}, {**SECTION, "fields": ["any_reoffence"]})


def test_diagnostics_find_the_mar_mechanism_and_warn_above_threshold():
    cases, _ = make_cases(3000, 11)
    cases = with_structural_ethnicity(cases)
    diagnostics = diagnose(cases, {}, SECTION)
    prior = diagnostics.missingness.query("field == 'prior_da_incidents'")
    assert prior["share_missing"].between(0.15, 0.4).all() and not prior["structural"].any()
    assert diagnostics.missingness.query("force == 'delta' and field == 'ethnicity'")["structural"].item()

    # prior_da_incidents goes missing for CARA cases that reoffended: treatment and reoffending predict it.
    model = diagnostics.models.query("field == 'prior_da_incidents'").set_index("term")
    assert model.loc["any_reoffence", "coef"] > 0.5 and model.loc["any_reoffence", "p_value"] < 0.001
    assert model.loc["treated", "coef"] > 0.2 and model.loc["treated", "p_value"] < 0.01
    # ethnicity's model leaves out the force that never records it.
    assert diagnostics.models.query("field == 'ethnicity'")["n_cases"].iat[0] == (cases["force"] != "delta").sum()

    all_forces = diagnostics.warnings.query("scope == 'all_forces'")
    assert set(all_forces["field"]) == {"ethnicity"}  # 25% structural + 10-30% sporadic, above 0.3
    assert diagnostics.warnings.query("scope == 'imputations'")["message"].str.contains("at least 100").all()
    pooled = diagnostics.patterns.query("force == 'all'")
    assert pooled["n_cases"].sum() == len(cases)
    assert pooled.query("pattern == 'none'")["n_cases"].item() == cases[list(FIELDS)].notna().all(axis=1).sum()


def test_complete_case_dataset_keeps_only_fully_observed_cases():
    cases, _ = make_cases(500, 12)
    data = complete_case_dataset(cases, SECTION)
    expected = cases[list(FIELDS)].notna().all(axis=1)
    assert len(data) == expected.sum() and data["case_id"].tolist() == cases.loc[expected, "case_id"].tolist()


def test_rubin_pool_matches_the_formula():
    estimate, variance = rubin_pool([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    assert estimate == 2.0 and variance == pytest.approx(0.5 + (1 + 1 / 3) * 1.0)


def test_nelson_aalen_matches_a_hand_count():
    frame = pd.DataFrame({"any_reoffence": [True, False, True, False], "days_to_first": [10.0, np.nan, 20.0, np.nan],
                          "followup_days": [365, 15, 365, 365]})
    # times 10 (event, 4 at risk), 15 (censored), 20 (event, 2 at risk), 365 (censored)
    assert nelson_aalen_at_followup(frame).tolist() == pytest.approx([0.25, 0.25, 0.75, 0.75])


def test_figures_say_so_when_no_force_records_a_field_to_impute(tmp_path):
    cases, _ = make_cases(100, 12)
    with plt.rc_context({"svg.fonttype": "none"}):  # SVG with its text as text, to read what the figure says
        plot_observed_vs_imputed(cases, [cases], [], tmp_path / "observed.svg")
        plot_convergence({"imp1": pd.DataFrame(columns=TRACE_COLUMNS)}, tmp_path / "convergence.svg")
    assert "No force records any covariate to impute" in (tmp_path / "observed.svg").read_text()
    assert "No covariate was missing: nothing was imputed" in (tmp_path / "convergence.svg").read_text()
