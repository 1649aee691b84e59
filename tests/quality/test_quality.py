"""Data-quality profile: every number checked against a hand count on a small canonical frame."""

import hashlib
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake, tiny_config

from cara_eval.common.schema import CARA_PROCESS_FIELDS, CASE_FIELDS, CASES_SCHEMA
from cara_eval.quality import profile as quality
from cara_eval.quality.profile import ForceDesign
from cara_eval.synth.forces import force_designs
from cara_eval.synth.population import simulate_population

CANONICAL_DTYPES = {
    "case_id": "string",
    "offender_pid": "string",
    "victim_pid": "string",
    "force": "string",
    "arm": "string",
    "comparison_type": "string",
    "index_date": "datetime64[ns]",
    "disposal_date": "datetime64[ns]",
    "period": "int64",
    "offence_type": "string",
    "dash_risk": "string",
    "age": "float64",
    "sex": "string",
    "ethnicity": "string",
    "prior_da_incidents": "float64",
    "victim_sex": "string",
    "relationship": "string",
    "together_at_index": "boolean",
    "workshop1_attended": "boolean",
    "workshop2_attended": "boolean",
    "completed": "boolean",
    "breached": "boolean",
    "victim_contacted": "boolean",
    "victim_consulted": "boolean",
    "followup_days": "int64",
    "outcome_source": "string",
    "any_reoffence": "boolean",
    "reoffence_count": "float64",
    "harm": "float64",
    "days_to_first": "float64",
    "event_observed": "boolean",
}


def canonical_frame(rows: list[dict]) -> pd.DataFrame:
    """Canonical cases with every field complete unless a row overrides it (None = missing)."""
    complete = {
        "victim_pid": "v",
        "index_date": pd.Timestamp("2020-06-01"),
        "offence_type": "common_assault",
        "dash_risk": "standard",
        "age": 30.0,
        "sex": "male",
        "ethnicity": "white",
        "prior_da_incidents": 1.0,
        "victim_sex": "female",
        "relationship": "current_partner",
        "together_at_index": True,
        "victim_contacted": True,
        "victim_consulted": False,
        "followup_days": 365,
        "outcome_source": "events",
        "any_reoffence": False,
        "reoffence_count": 0.0,
        "harm": 0.0,
        "days_to_first": None,
        "event_observed": False,
    }
    records = []
    for i, row in enumerate(rows):
        is_cara = row["arm"] == "cara"
        arm_fields = {
            "comparison_type": None if is_cara else "historical",
            **{f: (True if is_cara else None) for f in CARA_PROCESS_FIELDS},
        }
        record = {"case_id": f"c{i}", "offender_pid": f"o{i}", **complete, **arm_fields, **row}
        record["period"] = pd.Timestamp(record["index_date"]).year
        record.setdefault("disposal_date", record["index_date"] + pd.Timedelta(days=9))
        records.append(record)
    frame = pd.DataFrame.from_records(records).astype(CANONICAL_DTYPES)[list(CANONICAL_DTYPES)]
    return CASES_SCHEMA.validate(frame)


def test_completeness_equals_hand_counts_and_restricts_arm_fields_to_their_arm():
    cases = canonical_frame(
        [
            {"force": "dorset", "arm": "cara", "ethnicity": None, "workshop2_attended": None},
            {"force": "dorset", "arm": "cara", "ethnicity": None, "age": None},
            {"force": "dorset", "arm": "comparison", "ethnicity": None},
            {"force": "dorset", "arm": "comparison"},
            {"force": "norfolk", "arm": "cara", "age": None},
            {"force": "norfolk", "arm": "comparison"},
        ]
    )
    table = quality.completeness(cases, {}).set_index(["force", "field"])

    assert list(table.columns) == ["share_missing", "structural"]
    assert len(table) == 2 * len(quality.PROFILED_FIELDS)
    assert table.loc[("dorset", "ethnicity"), "share_missing"] == pytest.approx(3 / 4)
    assert table.loc[("dorset", "age"), "share_missing"] == pytest.approx(1 / 4)
    assert table.loc[("norfolk", "age"), "share_missing"] == pytest.approx(1 / 2)
    # workshop fields are null by design for comparison cases: denominator is the 2 CARA cases
    assert table.loc[("dorset", "workshop2_attended"), "share_missing"] == pytest.approx(1 / 2)
    assert table.loc[("dorset", "workshop1_attended"), "share_missing"] == 0.0
    # null by design, so not profiled: no comparison type for CARA, no days to first without a reoffence
    assert not {"comparison_type", "days_to_first"} & set(table.index.get_level_values("field"))
    assert table.loc[("norfolk", "sex"), "share_missing"] == 0.0
    assert not table["structural"].any()


def test_structural_comes_from_not_supplied_and_from_a_field_never_filled():
    cases = canonical_frame(
        [
            {"force": "dorset", "arm": "cara", "victim_contacted": None, "victim_consulted": None},
            {"force": "dorset", "arm": "comparison", "victim_contacted": None, "victim_consulted": None},
            {"force": "norfolk", "arm": "cara", "ethnicity": None},
            {"force": "norfolk", "arm": "comparison", "ethnicity": None, "sex": None, "age": None},
            # suffolk has no CARA case yet: only its mapping can say the workshops are never recorded
            {"force": "suffolk", "arm": "comparison"},
        ]
    )
    start = pd.Timestamp("2019-04-01")
    designs = {
        "dorset": ForceDesign(start, frozenset({"victim_contacted"})),
        # norfolk declares age not supplied but derives it from date of birth: values win over the declaration
        "norfolk": ForceDesign(start, frozenset({"age"})),
        "suffolk": ForceDesign(start, frozenset({"workshop1_attended"})),
    }
    table = quality.completeness(cases, designs).set_index(["force", "field"])

    structural = set(table.index[table["structural"]])
    # dorset declares victim_contacted and never fills victim_consulted; norfolk never fills ethnicity
    assert structural == {
        ("dorset", "victim_contacted"),
        ("dorset", "victim_consulted"),
        ("norfolk", "ethnicity"),
        ("suffolk", "workshop1_attended"),
    }
    assert math.isnan(table.loc[("suffolk", "workshop1_attended"), "share_missing"])
    assert math.isnan(table.loc[("suffolk", "workshop2_attended"), "share_missing"])
    # half missing is a gap, not a structural absence
    assert table.loc[("norfolk", "sex"), "share_missing"] == 0.5
    assert table.loc[("norfolk", "age"), "share_missing"] == 0.5


def write_identity_mapping(folder, force, cara_start, not_supplied):
    (folder / f"{force}.yaml").write_text(
        f"force: {force}\nsynthetic: true\n"
        f"design: {{cara_start: {cara_start}, extract_date: 2024-03-31, comparison: historical}}\n"
        f"cases: {{file: cases.parquet, format: parquet, identity: true, not_supplied: {not_supplied}}}\n"
        "reoffences: {file: reoffences.parquet, format: parquet, identity: true}\n"
    )


def test_read_force_designs_takes_cara_start_and_not_supplied_from_mapping(tmp_path):
    write_identity_mapping(tmp_path, "dorset", "2019-04-01", "[victim_contacted, victim_consulted]")
    write_identity_mapping(tmp_path, "norfolk", "2020-01-15", "[]")

    designs = quality.read_force_designs(sorted(tmp_path.glob("*.yaml")))

    assert designs["dorset"] == ForceDesign(pd.Timestamp("2019-04-01"), frozenset({"victim_contacted", "victim_consulted"}))
    assert designs["norfolk"] == ForceDesign(pd.Timestamp("2020-01-15"), frozenset())


def test_smd_matches_hand_computed_value_for_numeric_and_proportion():
    # numeric: means 34 and 30, variances 16 and 9: (34 - 30) / sqrt((16 + 9) / 2) = 4 / sqrt(12.5)
    assert quality.standardised_mean_difference(34.0, 30.0, 16.0, 9.0) == pytest.approx(4 / math.sqrt(12.5))
    # proportion 0.5 vs 0.2: (0.3) / sqrt((0.25 + 0.16) / 2)
    assert quality.standardised_mean_difference(0.5, 0.2, 0.25, 0.16) == pytest.approx(0.3 / math.sqrt(0.205))
    assert quality.standardised_mean_difference(1.0, 1.0, 0.0, 0.0) == 0.0
    assert math.isnan(quality.standardised_mean_difference(np.nan, 1.0, np.nan, 0.0))


def test_case_mix_uses_observed_values_and_pools_cases_in_the_all_row():
    cases = canonical_frame(
        [
            {"force": "dorset", "arm": "cara", "age": 20.0, "sex": "male"},
            {"force": "dorset", "arm": "cara", "age": 30.0, "sex": "female"},
            {"force": "dorset", "arm": "cara", "age": None, "sex": None},
            {"force": "dorset", "arm": "comparison", "age": 40.0, "sex": "male"},
            {"force": "dorset", "arm": "comparison", "age": 50.0, "sex": "male"},
            {"force": "norfolk", "arm": "cara", "age": 24.0, "sex": "male", "together_at_index": False},
            {"force": "norfolk", "arm": "comparison", "age": 26.0, "sex": "female"},
        ]
    )
    table = quality.case_mix(cases)
    assert list(table.columns) == ["force", "covariate", "level", "cara_mean", "comparison_mean", "smd"]
    rows = table.set_index(["force", "covariate", "level"])

    age = table[(table["force"] == "dorset") & (table["covariate"] == "age")].iloc[0]
    assert pd.isna(age["level"])
    assert (age["cara_mean"], age["comparison_mean"]) == (25.0, 45.0)
    # sample variances 50 and 50: (25 - 45) / sqrt(50)
    assert age["smd"] == pytest.approx(-20 / math.sqrt(50))

    # sex among the 2 CARA cases with sex observed: 1/2 male; comparison 2/2 male
    male = rows.loc[("dorset", "sex", "male")]
    assert (male["cara_mean"], male["comparison_mean"]) == (0.5, 1.0)
    assert male["smd"] == pytest.approx(-0.5 / math.sqrt((0.25 + 0.0) / 2))
    # a level seen only elsewhere still gets a row in every force, at share 0
    assert rows.loc[("dorset", "together_at_index", "false"), ["cara_mean", "comparison_mean", "smd"]].tolist() == [0.0, 0.0, 0.0]

    # pooled over cases: CARA ages 20, 30, 24 and comparison ages 40, 50, 26
    pooled_age = table[(table["force"] == "all") & (table["covariate"] == "age")].iloc[0]
    assert pooled_age["cara_mean"] == pytest.approx(74 / 3)
    assert pooled_age["comparison_mean"] == pytest.approx(116 / 3)
    assert pooled_age["smd"] == pytest.approx(
        (74 / 3 - 116 / 3) / math.sqrt((np.var([20, 30, 24], ddof=1) + np.var([40, 50, 26], ddof=1)) / 2)
    )
    assert table["force"].iloc[-1] == "all"
    # category shares within a force and arm sum to one
    sums = table[table["covariate"] == "ethnicity"].groupby("force")[["cara_mean", "comparison_mean"]].sum()
    assert np.allclose(sums.to_numpy(), 1.0)


def test_process_measures_tell_not_recorded_apart_from_zero():
    cases = canonical_frame(
        [
            # dorset records contact: 1 of 3 CARA cases contacted; one CARA case unrecorded
            {"force": "dorset", "arm": "cara", "victim_contacted": True, "victim_consulted": False},
            {"force": "dorset", "arm": "cara", "victim_contacted": False, "victim_consulted": False},
            {"force": "dorset", "arm": "cara", "victim_contacted": False, "victim_consulted": None},
            {"force": "dorset", "arm": "cara", "victim_contacted": None, "victim_consulted": None},
            {"force": "dorset", "arm": "comparison", "victim_contacted": True, "victim_consulted": True},
            # norfolk never records either measure (declared for contact, silent for consultation)
            {"force": "norfolk", "arm": "cara", "victim_contacted": None, "victim_consulted": None},
            {"force": "norfolk", "arm": "comparison", "victim_contacted": None, "victim_consulted": None},
        ]
    )
    designs = {"norfolk": ForceDesign(None, frozenset({"victim_contacted"}))}
    table = quality.process_measures(cases, designs).set_index("force")

    assert list(table.reset_index().columns) == [
        "force", "n_cara", "victim_contacted_share", "victim_consulted_share", "n_recorded",
    ]
    assert table.loc["dorset", "n_cara"] == 4
    assert table.loc["dorset", "victim_contacted_share"] == pytest.approx(1 / 3)
    assert table.loc["dorset", "victim_consulted_share"] == 0.0  # recorded, and nobody consulted
    assert table.loc["dorset", "n_recorded"] == 3
    assert table.loc["norfolk", "victim_contacted_share"] == quality.NOT_RECORDED
    assert table.loc["norfolk", "victim_consulted_share"] == quality.NOT_RECORDED
    assert table.loc["norfolk", "n_recorded"] == 0


def test_reasons_long_form_sums_back_to_row_accounting_totals():
    accounting = pd.DataFrame(
        {
            "force": ["dorset", "norfolk"],
            "rows_read": [110, 52],
            "clean": [100, 50],
            "ineligible": [7, 2],
            "quarantined": [3, 0],
            "ineligible:high_risk": [4, 2],
            "ineligible:repeat_offender": [3, np.nan],  # norfolk's accounting had no such column
            "quarantined:impossible_date": [3, 0],
        }
    )
    table = quality.reasons(accounting)

    assert list(table.columns) == ["force", "category", "reason", "n"]
    assert table.loc[(table["force"] == "norfolk") & (table["reason"] == "repeat_offender"), "n"].item() == 0
    sums = table.groupby(["force", "category"])["n"].sum().unstack()
    assert sums.loc["dorset"].tolist() == [7, 3]
    assert sums.loc["norfolk"].tolist() == [2, 0]

    with pytest.raises(ValueError, match="dorset"):
        quality.reasons(accounting.assign(ineligible=[8, 2]))


def test_followup_coverage_and_cohort_sizes_count_by_hand():
    cases = canonical_frame(
        [
            {"force": "dorset", "arm": "cara", "followup_days": 365, "index_date": pd.Timestamp("2021-03-01")},
            {"force": "dorset", "arm": "cara", "followup_days": 100, "index_date": pd.Timestamp("2023-12-01")},
            {"force": "dorset", "arm": "cara", "followup_days": 200, "index_date": pd.Timestamp("2023-09-01")},
            {"force": "dorset", "arm": "comparison", "followup_days": 365, "index_date": pd.Timestamp("2018-05-01")},
        ]
    )
    coverage = quality.followup_coverage(cases, full_followup_days=365).set_index(["force", "arm"])
    assert coverage.loc[("dorset", "cara")].tolist() == [3, pytest.approx(1 / 3), 200.0]
    assert coverage.loc[("dorset", "comparison")].tolist() == [1, 1.0, 365.0]

    sizes = quality.cohort_sizes(cases).set_index(["force", "period", "arm"])["n_cases"]
    assert sizes[("dorset", 2023, "cara")] == 2
    assert sizes[("dorset", 2023, "comparison")] == 0
    assert sizes[("dorset", 2018, "comparison")] == 1
    assert sizes.sum() == len(cases)


def test_case_mix_leaves_out_covariates_no_force_records():
    cases = canonical_frame([{"force": f, "arm": arm, "ethnicity": None} for f in ("dorset", "norfolk")
                             for arm in ("cara", "comparison")])
    table = quality.case_mix(cases)
    assert "ethnicity" not in set(table["covariate"]) and "sex" in set(table["covariate"])
    trial = simulate_population(200, ["trial_1", "trial_2"], seed=1).cases  # no covariate but the offence recorded
    assert set(quality.case_mix(trial)["covariate"]) == {"offence_type"}


def test_case_mix_gives_empty_shares_where_a_force_never_records_a_covariate():
    cases = canonical_frame(
        [
            {"force": "dorset", "arm": "cara", "ethnicity": "asian"},
            {"force": "dorset", "arm": "comparison", "ethnicity": "white"},
            {"force": "norfolk", "arm": "cara", "ethnicity": None},
            {"force": "norfolk", "arm": "comparison", "ethnicity": None},
        ]
    )
    rows = quality.case_mix(cases).set_index(["force", "covariate", "level"]).sort_index()

    assert rows.loc[("norfolk", "ethnicity")].index.tolist() == ["asian", "white"]
    assert rows.loc[("norfolk", "ethnicity"), ["cara_mean", "comparison_mean", "smd"]].isna().all().all()
    # one level per arm, no spread: the SMD of a 0-vs-1 proportion has a zero pooled SD but a difference
    assert math.isnan(rows.loc[("dorset", "ethnicity", "asian"), "smd"])


def test_case_mix_of_a_covariate_no_case_records_and_of_a_force_with_one_arm_has_no_error():
    """A force that never records DASH, ingested alone (issue 16: KeyError 'cara'), and a one-arm force."""
    cases = canonical_frame(
        [
            {"force": "dorset", "arm": "cara", "dash_risk": None, "relationship": None},
            {"force": "dorset", "arm": "comparison", "dash_risk": None, "relationship": None},
            {"force": "norfolk", "arm": "cara", "dash_risk": None, "relationship": "family", "age": 40.0},
        ]
    )
    table = quality.case_mix(cases)
    assert not table["covariate"].isin(["dash_risk"]).any()  # no level seen anywhere: no rows
    norfolk = table[(table["force"] == "norfolk") & (table["covariate"] == "age")].iloc[0]
    assert norfolk["cara_mean"] == 40 and math.isnan(norfolk["comparison_mean"]) and math.isnan(norfolk["smd"])
    assert not np.isinf(table[["cara_mean", "comparison_mean", "smd"]].to_numpy(dtype=float)).any()


@pytest.fixture(scope="module")
def synthetic():
    """Canonical cases of the nine synthetic forces, with each force's declared never-recorded fields."""
    seed = 11
    cases = simulate_population(1500, None, seed).cases[list(CASE_FIELDS)]
    designs = force_designs(None, None, seed)
    return cases, designs


def test_profile_of_synthetic_forces_finds_exactly_the_gaps_they_were_built_with(synthetic):
    cases, synth_designs = synthetic
    designs = {d.force: ForceDesign(d.cara_start, frozenset(d.not_supplied)) for d in synth_designs}

    table = quality.completeness(cases, designs)
    expected = {(d.force, field) for d in synth_designs for field in d.not_supplied}
    # forces sending only a 12-month flag have no counts or harm: structural without being declared
    expected |= {(d.force, field) for d in synth_designs if d.outcome_source == "flag" for field in ("reoffence_count", "harm")}
    assert set(zip(table.loc[table["structural"], "force"], table.loc[table["structural"], "field"])) == expected

    process = quality.process_measures(cases, designs).set_index("force")
    not_recorded = {d.force for d in synth_designs if "victim_contacted" in d.not_supplied}
    assert set(process.index[process["victim_contacted_share"].eq(quality.NOT_RECORDED)]) == not_recorded
    recorded = process.drop(index=sorted(not_recorded))
    assert recorded["victim_contacted_share"].astype(float).between(0, 1).all()
    assert process["n_cara"].sum() == cases["arm"].eq("cara").sum()

    sizes = quality.cohort_sizes(cases)
    assert sizes["n_cases"].sum() == len(cases)
    coverage = quality.followup_coverage(cases, full_followup_days=365)
    assert coverage["n_cases"].sum() == len(cases)
    # West Midlands' extract stops in 2022-09: its recent CARA cases cannot all have a full year
    wm = coverage.set_index(["force", "arm"]).loc[("west_midlands", "cara"), "share_full_followup"]
    by_hand = cases.loc[cases["force"].eq("west_midlands") & cases["arm"].eq("cara"), "followup_days"].ge(365).mean()
    assert wm == pytest.approx(by_hand) and wm < 1


def test_quality_rules_run_in_snakemake_and_rerun_byte_identical(synthetic, tmp_path):
    cases, synth_designs = synthetic
    shutil.copytree(REPO / "config", tmp_path / "config")
    forces_dir = tmp_path / "config" / "forces"
    shutil.rmtree(forces_dir)
    forces_dir.mkdir()
    for design in synth_designs:
        write_identity_mapping(forces_dir, design.force, design.cara_start.date(), f"[{', '.join(design.not_supplied)}]")
    config = {**tiny_config(), "forces": [d.force for d in synth_designs]}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    ingest = tmp_path / "results" / "ingest"
    ingest.mkdir(parents=True)
    cases.to_parquet(ingest / "cases.parquet")
    forces = sorted(cases["force"].unique())
    clean = cases["force"].value_counts().reindex(forces).to_numpy()
    accounting = pd.DataFrame(
        {"force": forces, "rows_read": clean + 5, "clean": clean, "ineligible": 4, "quarantined": 1,
         "ineligible:high_risk": 3, "ineligible:repeat_offender": 1, "quarantined:impossible_date": 1}
    )
    accounting.to_csv(ingest / "row_accounting.csv", index=False)
    targets = ["results/quality/completeness.csv", "results/quality/case_mix.csv"]
    quality_rules = ["--allowed-rules", "quality_profile", "quality_case_mix"]

    # --nolock ends --configfile's list of files, so the targets that follow are read as targets
    run_snakemake(tmp_path, "--nolock", *targets, *quality_rules)
    outputs = sorted((tmp_path / "results" / "quality").iterdir())
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in outputs}
    again = run_snakemake(tmp_path, "--nolock", *targets, *quality_rules, "--forcerun", "quality_profile",
                          "quality_case_mix")
    log = again.stdout + again.stderr
    assert "rule quality_profile:" in log and "rule quality_case_mix:" in log  # both ran again

    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in outputs} == digests
    assert len(digests) == 11
    process = pd.read_csv(tmp_path / "results" / "quality" / "process_measures.csv").set_index("force")
    assert process.loc["leicestershire", "victim_contacted_share"] == quality.NOT_RECORDED
    reasons = pd.read_csv(tmp_path / "results" / "quality" / "reasons.csv")
    assert reasons["n"].sum() == accounting[["ineligible", "quarantined"]].to_numpy().sum()
    # personal data never reaches results or logs: not even a pseudonymised id
    written = "".join(p.read_text() for p in outputs if p.suffix == ".csv")
    written += "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    pseudonyms = pd.concat([cases[column].dropna() for column in ("case_id", "offender_pid", "victim_pid")])
    assert len(pseudonyms) > len(cases)
    assert not any(pid in written for pid in pseudonyms)
