"""The synthetic generator: deterministic, sized as asked, every force's quirks present, truth consistent
with its own event process, and raw files that ingest turns back into exactly the canonical cases."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cara_eval.common.schema import CASE_FIELDS, CASES_SCHEMA, OFFENCE_TYPES, REOFFENCE_TYPES
from cara_eval.ingest.force import ingest_force
from cara_eval.ingest.mapping import load_mapping
from cara_eval.ingest.outcomes import load_harm_weights as ingest_harm_weights
from cara_eval.ingest.parsing import load_offence_types, normalise_text
from cara_eval.synth import population as synth
from cara_eval.synth.cli import run
from cara_eval.synth.forces import NINE_FORCES, force_designs, load_harm_weights
from cara_eval.synth.population import simulate_population
from cara_eval.synth.raw import FORCE_QUIRKS, OFFENCE_NAMES

REPO = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
NINE = [d.force for d in NINE_FORCES]


@pytest.fixture(scope="module")
def population():
    return simulate_population(3000, None, seed=11)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The CLI's output for all nine forces at 3,000 cases, and the population behind it."""
    root = tmp_path_factory.mktemp("synth")
    run(["--config", str(REPO / "config" / "config.yaml"), "--n-cases", "3000", "--seed", "11",
         "--raw-dir", str(root / "raw"), "--truth-file", str(root / "truth.json")])
    return root, json.loads((root / "truth.json").read_text())


def _file_bytes(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path, written):
    root, _ = written
    args = ["--config", str(REPO / "config" / "config.yaml"), "--n-cases", "3000", "--raw-dir", str(tmp_path / "raw"),
            "--truth-file", str(tmp_path / "truth.json")]
    run([*args, "--seed", "11"])
    assert _file_bytes(tmp_path / "raw") == _file_bytes(root / "raw")  # includes the xlsx workbook
    assert (tmp_path / "truth.json").read_bytes() == (root / "truth.json").read_bytes()
    run([*args, "--seed", "12", "--force-overwrite"])
    assert _file_bytes(tmp_path / "raw") != _file_bytes(root / "raw")


def test_population_is_fast_sized_and_canonical():
    started = time.perf_counter()
    population = simulate_population(3000, None, seed=3)
    assert time.perf_counter() - started < 5  # ~0.3 s on an idle core; generous for a shared machine
    cases = population.cases
    assert len(cases) == 3000 == population.truth["n_cases"]
    assert cases.groupby("force").size().to_dict() == {f: v["n_cases"] for f, v in population.truth["forces"].items()}
    CASES_SCHEMA.validate(cases[CASE_FIELDS])
    assert not cases["crime_ref"].duplicated().any() and not cases["offender_id"].duplicated().any()


def test_default_sizes_span_small_to_large_forces():
    sizes = {d.force: d.size_weight for d in NINE_FORCES}
    assert sum(sizes.values()) == 18000
    assert min(sizes.values()) == 150 and max(sizes.values()) == 4000
    tiny = simulate_population(300, ["hampshire", "norfolk", "west_yorkshire"], seed=1)
    assert tiny.cases["force"].value_counts().min() >= 30 and len(tiny.cases) == 300


def test_cara_starts_are_staggered_with_hampshire_first():
    starts = {d.force: d.cara_start for d in NINE_FORCES}
    assert min(starts, key=starts.get) == "hampshire"
    assert all(pd.Timestamp("2013-01-01") <= s <= pd.Timestamp("2021-12-31") for s in starts.values())


def test_mapping_files_load_and_agree_with_the_simulated_designs():
    for design in NINE_FORCES:
        mapping = load_mapping(REPO / "config" / "forces" / f"{design.force}.yaml")
        assert mapping["synthetic"] is True
        assert mapping["design"]["cara_start"] == design.cara_start
        assert mapping["design"]["extract_date"] == design.extract_date
        assert mapping["design"]["comparison"] == design.comparison
        assert (mapping["reoffences"] is None) == (design.outcome_source == "flag")
        never = {f for f, c in mapping["cases"]["columns"].items() if not c}
        assert set(design.not_supplied) <= never


def test_every_offence_name_written_is_in_the_offence_lookup():
    lookup = load_offence_types(REPO / "config" / "offence_types.yaml")
    for offence_type, names in OFFENCE_NAMES.items():
        normalised = normalise_text(pd.Series(names, dtype="string"))
        assert {lookup.get(n) for n in normalised} == {offence_type}, offence_type
    assert lookup["gbh"] == "other_violence"


def test_harm_weights_cover_every_reoffence_type_and_say_they_are_illustrative():
    table = pd.read_csv(REPO / "config" / "harm_weights.csv")
    assert set(table["offence_type"]) == set(synth.REOFFENCE_TYPE_PROBS) == set(REOFFENCE_TYPES)
    assert set(synth.INDEX_OFFENCE_PROBS) == set(OFFENCE_TYPES)
    assert table["source"].str.contains("illustrative").all()
    assert load_harm_weights() == dict(zip(table["offence_type"], table["weight_days"].astype(float)))


def test_outcomes_agree_with_the_reoffences_table(population):
    cases, later = population.cases, population.reoffences
    da = later[later["da_related"]].merge(cases[["offender_id", "index_date", "followup_days"]], on="offender_id")
    da["days"] = (da["offence_date"] - da["index_date"]).dt.days
    window = da[(da["days"] > 0) & (da["days"] <= da["followup_days"])]
    weights = load_harm_weights()
    per_offender = window.assign(weight=window["offence_type"].map(weights)).groupby("offender_id").agg(
        count=("days", "size"), harm=("weight", "sum"), first=("days", "min"))
    expected = per_offender.reindex(cases["offender_id"]).set_axis(cases.index)
    from_events = cases["outcome_source"] == "events"
    assert (cases["any_reoffence"] == expected["count"].notna()).all()
    assert np.allclose(cases.loc[from_events, "reoffence_count"], expected.loc[from_events, "count"].fillna(0))
    assert np.allclose(cases.loc[from_events, "harm"], expected.loc[from_events, "harm"].fillna(0))
    assert cases.loc[from_events, "days_to_first"].equals(expected.loc[from_events, "first"].astype(float))
    assert cases.loc[~from_events, ["reoffence_count", "harm", "days_to_first"]].isna().all().all()
    assert (later["offence_date"] > cases.set_index("offender_id").loc[later["offender_id"], "index_date"].to_numpy()).all()


def test_extract_date_limits_events_and_follow_up(population):
    cases, later = population.cases, population.reoffences
    extract = {d.force: d.extract_date for d in NINE_FORCES}
    assert (later["offence_date"] <= later["force"].map(extract)).all()
    cara = cases[cases["arm"] == "cara"]
    short_share = (cara["followup_days"] < 365).groupby(cara["force"]).mean()
    assert short_share["west_midlands"] > 0.25  # CARA began 2020, extract taken 2022: follow-up cut short
    assert short_share["hampshire"] < 0.15


def test_cara_process_fields_are_consistent(population):
    cara = population.cases[population.cases["arm"] == "cara"]
    comparison = population.cases[population.cases["arm"] == "comparison"]
    assert (cara["breached"] == ~cara["completed"]).all()
    assert cara.loc[cara["completed"], ["workshop1_attended", "workshop2_attended"]].all().all()
    assert not cara.loc[~cara["completed"], "workshop2_attended"].any()
    assert 0.10 < 1 - cara["completed"].mean() < 0.20
    assert comparison[["workshop1_attended", "completed", "breached"]].isna().all().all()
    contemporaneous = comparison["comparison_type"] == "contemporaneous"
    assert set(comparison.loc[contemporaneous, "force"]) <= {"hampshire", "leicestershire", "thames_valley"}


def test_missingness_hides_values_without_changing_them(population):
    complete = simulate_population(3000, None, seed=11, missingness=False).cases
    observed = population.cases
    for column in ("ethnicity", "prior_da_incidents", "together_at_index", "dash_risk"):
        seen = observed[column].notna()
        assert observed.loc[seen, column].astype(object).equals(complete.loc[seen, column].astype(object))
        assert complete[column].notna().all()
    assert observed.loc[observed["force"] == "cambridgeshire", "ethnicity"].isna().all()
    assert observed.loc[observed["force"] == "hampshire", CASE_FIELDS].drop(
        columns=["comparison_type", "workshop1_attended", "workshop2_attended", "completed", "breached",
                 "days_to_first"]).notna().all().all()
    assert observed[["any_reoffence", "reoffence_count"]].equals(complete[["any_reoffence", "reoffence_count"]])


def test_truth_effects_are_negative_and_match_a_monte_carlo_counterfactual():
    """Expected risks from the true hazards equal the average over many event draws, with and without CARA."""
    population = simulate_population(4000, None, seed=5, missingness=False)
    truth, cases = population.truth, population.cases
    pooled = truth["outcomes"]["any_reoffence"]["pooled"]
    assert pooled["risk_difference_per100"] < 0 and pooled["risk_ratio"] < 1 and pooled["odds_ratio"] < 1
    baseline = {f: v["baseline_log_hazard"] for f, v in truth["forces"].items()}
    log_hazard = synth._log_hazard_case_mix(cases, baseline, truth["trend_shape"])
    log_hr = synth._cara_log_hr(cases, {f: v["log_hr"] for f, v in truth["forces"].items()})
    cara = (cases["arm"] == "cara").to_numpy()
    rng = np.random.default_rng(99)
    year = np.full(cara.sum(), 365.0)
    weights = load_harm_weights()
    risks, counts = {}, {}
    for label, effect in (("cara", log_hr[cara]), ("counterfactual", 0.0)):
        draws = [synth._simulate_events(rng, log_hazard[cara] + effect, year, weights) for _ in range(40)]
        da = [d[d["da_related"]] for d in draws]
        risks[label] = np.mean([d["case"].nunique() / cara.sum() for d in da])
        counts[label] = np.mean([len(d) / cara.sum() for d in da])
    assert 100 * (risks["cara"] - risks["counterfactual"]) == pytest.approx(pooled["risk_difference_per100"], abs=0.6)
    assert risks["cara"] == pytest.approx(pooled["risk_cara"], abs=0.005)
    rate_ratio = truth["outcomes"]["reoffence_count"]["pooled"]["rate_ratio"]
    assert counts["cara"] / counts["counterfactual"] == pytest.approx(rate_ratio, abs=0.02)
    together = truth["outcomes"]["any_reoffence"]["by_relationship"]
    assert together["together"]["log_hr"] < together["separated"]["log_hr"] < 0
    assert truth["outcomes"]["time_to_first"]["pooled"]["log_hr"] == pooled["log_hr"]


def test_trend_shapes_change_outcomes_not_the_case_mix():
    linear = simulate_population(2000, None, seed=4, trend_shape="linear")
    nonlinear = simulate_population(2000, None, seed=4, trend_shape="nonlinear")
    assert linear.cases["index_date"].equals(nonlinear.cases["index_date"])
    assert not linear.cases["reoffence_count"].equals(nonlinear.cases["reoffence_count"])
    assert synth.secular_trend(np.array([2011.0]), "nonlinear") < synth.secular_trend(np.array([2016.0]), "nonlinear")
    assert synth.secular_trend(np.array([2022.0]), "nonlinear") < synth.secular_trend(np.array([2016.0]), "nonlinear")
    with pytest.raises(ValueError, match="trend_shape"):
        simulate_population(100, ["hampshire"], seed=1, trend_shape="cubic")


def test_each_force_format_quirk_is_in_its_files(written):
    root, truth = written
    raw = root / "raw"
    west_yorkshire = (raw / "west_yorkshire" / "WYP_CARA_Extract.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        west_yorkshire.decode("utf-8")
    text = west_yorkshire.decode("cp1252")
    assert "£" in text and "\r\n" in text and any(name in text for name in ("Zoë", "Siân", "Brontë"))
    assert pd.ExcelFile(raw / "norfolk" / "norfolk_cara.xlsx").sheet_names == ["Cases", "Reoffences"]
    assert [p.name for p in (raw / "cambridgeshire").iterdir()] == ["cambs_da_cautions.csv"]
    assert [p.name for p in (raw / "thames_valley").iterdir()] == ["tvp_cara_cohort.csv"]
    dorset = pd.read_csv(raw / "dorset" / "dorset_cases.csv", dtype=str)
    assert not any("dash" in c.lower() for c in dorset.columns)
    leics = pd.read_csv(raw / "leicestershire" / "leics_oocd_da.csv", sep=";", dtype=str)
    assert not any("victim contact" in c.lower() for c in leics.columns)
    assert set(leics["Risk Level"]) == {"Std", "Med", "High"}
    avon = pd.read_csv(raw / "avon_and_somerset" / "avon_somerset_cara_extract.csv", dtype=str, keep_default_na=False)
    assert avon.duplicated().sum() == 6 and avon["Date Of Offence"].str.startswith("31/02/").sum() == 3
    assert {"common assualt", "harrassment"} & set(avon["Offence Description"].str.lower())
    thames = pd.read_csv(raw / "thames_valley" / "tvp_cara_cohort.csv", dtype=str)
    assert thames["Offence Date"].str.fullmatch(r"\d\d/\d\d/\d\d").all()
    hampshire = truth["injected_defects"]["hampshire"]
    assert hampshire["rows_written"] == hampshire["clean_cases"] and len(hampshire) == 3


def test_ingest_recovers_the_canonical_cases_and_the_injected_defects(written, tmp_path):
    """The strongest check that mappings and files agree: ingest gives back the population, row for row."""
    root, truth = written
    population = simulate_population(3000, None, seed=11)
    lookup = load_offence_types(REPO / "config" / "offence_types.yaml")
    weights = ingest_harm_weights(REPO / "config" / "harm_weights.csv")
    key = CONFIG["pseudonymisation"]["synthetic_test_key"].encode("utf-8")
    for force in NINE:
        result = ingest_force(load_mapping(REPO / "config" / "forces" / f"{force}.yaml"), root / "raw", lookup,
                              weights, key, CONFIG["eligibility"])
        accounting = result.accounting.iloc[0]
        injected = truth["injected_defects"][force]
        assert accounting["rows_read"] == injected["rows_written"]
        assert accounting["clean"] == injected["clean_cases"]
        reasons = {k: v for k, v in accounting.items() if ":" in k and v}
        assert reasons == {k: v for k, v in injected.items() if ":" in k}, force
        expected = population.cases.loc[population.cases["force"] == force, CASE_FIELDS]
        pd.testing.assert_frame_equal(result.cases.sort_values("case_id", ignore_index=True),
                                      expected.sort_values("case_id", ignore_index=True), check_dtype=False)


def test_truth_holds_no_personal_data(written, population):
    root, _ = written
    text = (root / "truth.json").read_text()
    for column in ("offender_id", "victim_id", "crime_ref", "offender_name", "victim_name"):
        assert not any(value in text for value in population.cases[column].head(200))


def test_injected_defects_are_spread_across_forces(written):
    _, truth = written
    reasons = {r for force in NINE for r in truth["injected_defects"][force] if ":" in r}
    assert {"quarantined:duplicate_row", "quarantined:unparseable_date", "quarantined:impossible_date",
            "ineligible:dash_risk_not_eligible", "ineligible:under_min_age", "ineligible:prior_da_conviction",
            "ineligible:offence_type_not_eligible", "ineligible:repeat_offender"} <= reasons
    assert sum(1 for f in NINE if len(truth["injected_defects"][f]) == 3) == 1  # only hampshire is clean
    assert set(FORCE_QUIRKS) == set(NINE)


def test_national_scale_writes_identity_mappings_that_ingest_reads(tmp_path):
    run(["--config", str(REPO / "config" / "config.yaml"), "--n-cases", "2000", "--n-forces", "43",
         "--raw-dir", str(tmp_path / "raw"), "--truth-file", str(tmp_path / "truth.json"),
         "--mappings-out", str(tmp_path / "forces")])
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert len(truth["forces"]) == 43 and truth["n_cases"] == 2000
    assert sorted(p.stem for p in (tmp_path / "forces").glob("*.yaml")) == sorted(truth["forces"])
    mapping = load_mapping(tmp_path / "forces" / "force_27.yaml")
    assert mapping["cases"]["format"] == "parquet" and mapping["cases"]["columns"]["age"] == "age"
    result = ingest_force(mapping, tmp_path / "raw", load_offence_types(REPO / "config" / "offence_types.yaml"),
                          ingest_harm_weights(REPO / "config" / "harm_weights.csv"),
                          CONFIG["pseudonymisation"]["synthetic_test_key"].encode("utf-8"), CONFIG["eligibility"])
    assert len(result.cases) == truth["forces"]["force_27"]["n_cases"] == result.accounting.at[0, "rows_read"]
    starts = [pd.Timestamp(v["cara_start"]) for v in truth["forces"].values()]
    assert min(starts).year >= 2013 and max(starts).year <= 2021


def test_cli_refuses_to_overwrite_extracts(tmp_path):
    args = ["--config", str(REPO / "config" / "config.yaml"), "--n-cases", "300", "--forces", "hampshire,dorset",
            "--raw-dir", str(tmp_path / "raw"), "--truth-file", str(tmp_path / "truth.json")]
    run(args)
    with pytest.raises(SystemExit, match="force-overwrite"):
        run(args)
    run([*args, "--force-overwrite", "--seed", "2"])
    assert json.loads((tmp_path / "truth.json").read_text())["seed"] == 2
    with pytest.raises(SystemExit, match="mappings-out"):
        run([*args, "--force-overwrite", "--forces", "", "--n-forces", "20"])


def test_unknown_forces_are_refused():
    with pytest.raises(ValueError, match="force_44"):
        force_designs(["force_44"], None, seed=1)


def test_one_force_is_generated():
    population = simulate_population(300, ["west_midlands"], seed=4)
    assert len(population.cases) == 300 and set(population.cases["force"]) == {"west_midlands"}
    assert population.cases["followup_days"].between(0, 365).all()


def test_trial_forces_are_randomised_flag_only_one_year_complete_and_arm_only(tmp_path):
    forces = ["trial_1", "trial_2", "trial2y_1"]
    run(["--config", str(REPO / "config" / "config.yaml"), "--n-cases", "300", "--forces", ",".join(forces),
         "--raw-dir", str(tmp_path / "raw"), "--truth-file", str(tmp_path / "truth.json"),
         "--mappings-out", str(tmp_path / "forces")])
    cases = simulate_population(300, forces, seed=CONFIG["seed"]).cases
    trial = cases[cases["force"] != "trial2y_1"]
    assert set(trial["period"]) == {2022} and set(cases.loc[cases["force"] == "trial2y_1", "period"]) == {2021, 2022}
    assert (cases["outcome_source"] == "flag").all() and (cases["followup_days"] == 365).all()
    assert set(cases["comparison_type"].dropna()) == {"contemporaneous"}
    assert 0.35 < (cases["arm"] == "cara").mean() < 0.65  # randomised 1:1
    assert cases[["age", "sex", "prior_da_incidents", "together_at_index", "ethnicity"]].isna().all().all()
    mapping = load_mapping(tmp_path / "forces" / "trial_1.yaml")
    assert mapping["reoffences"] is None and mapping["cases"]["columns"]["reoffended_12m"] == "reoffended_12m"
    assert not mapping["cases"]["columns"]["sex"] and (tmp_path / "raw" / "trial_1").is_dir()


def test_shaped_forces_carry_their_shape():
    cases = simulate_population(400, ["caraonly_1", "allmale_1", "hampshire"], seed=2, missingness=False).cases
    assert (cases.loc[cases["force"] == "caraonly_1", "arm"] == "cara").all()
    assert (cases.loc[cases["force"] == "allmale_1", "sex"] == "male").all()
    assert (cases.loc[cases["force"] == "hampshire", "sex"] == "female").any()
