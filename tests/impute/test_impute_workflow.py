"""The impute rules run end to end on a prepared cases table: datasets, MNAR, complete cases, diagnostics."""

import shutil

import pandas as pd
import yaml
from conftest import REPO, deep_merge, run_snakemake, tiny_config
from test_impute import make_cases

FORCES = ["cambridgeshire", "hampshire", "norfolk", "west_yorkshire"]  # cambridgeshire never records ethnicity
IMPUTE_RULES = ["impute_diagnose", "impute_dataset", "impute_mnar", "impute_complete_case", "impute_plot"]


def test_impute_rules_build_every_dataset_and_diagnostic(tmp_path):
    config = deep_merge(tiny_config(), {
        "forces": FORCES,
        "imputation": {"m": 2, "iterations": 3, "mnar": {"field": "prior_da_incidents", "deltas": [0, 0.5], "m": 1}},
    })
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cases, _ = make_cases(600, 21, forces=tuple(FORCES))
    cases.loc[cases["force"] == "cambridgeshire", "ethnicity"] = pd.NA
    (tmp_path / "results" / "ingest").mkdir(parents=True)
    cases.to_parquet(tmp_path / "results" / "ingest" / "cases.parquet", index=False)

    targets = [f"results/impute/{d}.parquet" for d in ("imp1", "imp2", "mnar0_imp1", "mnar0.5_imp1", "cc")]
    targets += ["results/impute/diagnostics/convergence.png", "results/impute/diagnostics/observed_vs_imputed.png"]
    run_snakemake(tmp_path, "--allowed-rules", *IMPUTE_RULES, "--", *targets)

    impute_dir = tmp_path / "results" / "impute"
    first, second = (pd.read_parquet(impute_dir / f"imp{k}.parquet") for k in (1, 2))
    assert first["ethnicity"].notna().all() and not first["age"].equals(second["age"])
    pd.testing.assert_frame_equal(first, pd.read_parquet(impute_dir / "mnar0_imp1.parquet"))
    shifted = pd.read_parquet(impute_dir / "mnar0.5_imp1.parquet")
    missing = cases["prior_da_incidents"].isna()
    assert shifted.loc[missing, "prior_da_incidents"].mean() > first.loc[missing, "prior_da_incidents"].mean() + 0.3
    assert len(pd.read_parquet(impute_dir / "cc.parquet")) == cases[config["imputation"]["fields"]].notna().all(
        axis=1).sum()

    structural = pd.read_csv(impute_dir / "diagnostics" / "structural_pairs.csv")
    assert structural[["force", "field", "reason"]].values.tolist() == [["cambridgeshire", "ethnicity", "not_supplied"]]
    trace = pd.read_csv(impute_dir / "diagnostics" / "trace_imp1.csv")
    assert trace["iteration"].max() == 3 and set(trace["field"]) >= {"ethnicity", "prior_da_incidents"}

    # No pseudonymised identifier reaches the diagnostics or the logs.
    identifiers = set(cases["case_id"]) | set(cases["offender_pid"])
    texts = [p.read_text() for p in (impute_dir / "diagnostics").glob("*.csv")]
    texts += [p.read_text() for p in (tmp_path / "logs").rglob("*.log")]
    assert texts and identifiers
    assert not any(identifier in text for text in texts for identifier in identifiers)
