"""The crosscheck and costbenefit rules run under Snakemake on tiny data and leak no personal data.

Runs the stage files through a two-line Snakefile (common.smk + the stage files), so the rules and scripts
are tested before the main Snakefile's final targets include them.
"""

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, deep_merge, run_snakemake, tiny_config

from cara_eval.common.schema import CASE_FIELDS
from cara_eval.crosscheck.regression import ESTIMATE_COLUMNS
from cara_eval.synth.population import simulate_population

STAGE_SNAKEFILE = """
configfile: "config/config.yaml"
include: "{repo}/rules/common.smk"
include: "{repo}/rules/crosscheck.smk"
include: "{repo}/rules/costbenefit.smk"
rule all:
    input: get_crosscheck_outputs() + get_costbenefit_outputs()
"""


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("crosscheck")
    shutil.copytree(REPO / "config", workdir / "config")
    config = deep_merge(tiny_config(), {"crosscheck": {"wild_bootstrap": {"draws": 199},
                                                       "propensity": {"bootstrap_draws": 20}}})
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    population = simulate_population(900, config["forces"], seed=config["seed"])
    (workdir / "results" / "impute").mkdir(parents=True)
    population.cases[list(CASE_FIELDS)].to_parquet(workdir / "results" / "impute" / "imp1.parquet")
    draws_dir = workdir / "results" / "model" / "any_reoffence" / "pooled"
    draws_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    scopes = [("pooled", None, -4.0, 400)] + [("force", f, -4.0, 100) for f in config["forces"]] + \
        [("new_force", None, -4.0, None)]
    pd.concat([pd.DataFrame({"draw": np.arange(500), "scope": scope, "force": force,
                             "rd_per100": rng.normal(mean, 3, 500), "n_cara": pd.array([n] * 500, dtype="Int64")})
               for scope, force, mean, n in scopes]).to_parquet(draws_dir / "effect_draws.parquet")
    snakefile = workdir / "Snakefile"
    snakefile.write_text(STAGE_SNAKEFILE.format(repo=REPO))
    run_snakemake(workdir, "-s", str(snakefile))
    return workdir, population


def test_estimates_table_has_every_method_in_the_contract_layout(stage_run):
    workdir, population = stage_run
    estimates = pd.read_csv(workdir / "results" / "crosscheck" / "estimates.csv")
    assert list(estimates.columns) == ESTIMATE_COLUMNS
    assert set(estimates["method"]) == {"logit_glm", "lpm_cluster_robust", "lpm_wild_cluster_bootstrap",
                                        "poisson_glm", "its_segmented", "propensity_att"}
    its_forces = estimates.loc[estimates["method"] == "its_segmented", "force"]
    assert set(its_forces) == set(population.cases["force"])
    assert estimates["estimate"].notna().any() and estimates.loc[estimates["estimate"].isna(), "note"].notna().all()
    balance = pd.read_csv(workdir / "results" / "crosscheck" / "balance.csv")
    assert set(balance["force"]) <= set(population.cases["force"])


def test_costbenefit_outputs_cover_every_scope(stage_run):
    workdir, _ = stage_run
    summary = pd.read_csv(workdir / "results" / "costbenefit" / "summary.csv")
    assert list(summary["scope"]) == ["pooled", "force", "force", "force", "new_force"]
    ceac = pd.read_csv(workdir / "results" / "costbenefit" / "ceac.csv")
    assert ceac["wtp_per_reoffence_avoided"].max() == 60000
    assert (workdir / "results" / "costbenefit" / "ceac.png").read_bytes()[:4] == b"\x89PNG"


def test_no_identifier_reaches_results_or_logs(stage_run):
    workdir, population = stage_run
    identifiers = set(population.cases["case_id"]) | set(population.cases["offender_pid"]) | \
        set(population.cases["victim_pid"].dropna())
    written = [p for folder in ("results/crosscheck", "results/costbenefit", "logs")
               for p in (workdir / folder).rglob("*") if p.is_file() and p.suffix != ".png"]
    assert written
    text = "\n".join(p.read_text() for p in written)
    assert not [i for i in identifiers if i in text]
