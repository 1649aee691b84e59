"""Decisions of the calibration stage (its get_* functions), kept apart from its rules."""

from cara_eval.calibration.store import (
    replicate_model_settings,
    replicate_settings,
    sbc_replicate_settings,
)


wildcard_constraints:
    scenario=r"[a-z0-9_.]+",
    replicate=r"\d+",


def get_calibration_scenarios():
    """The scenarios `snakemake calibration` builds: config calibration.run_scenarios, or every scenario."""
    return config["calibration"]["run_scenarios"] or list(
        config["calibration"]["scenarios"]
    )


def get_scenario_replicate_count(scenario):
    """K of one scenario: its own `replicates`, else calibration.replicates."""
    settings = config["calibration"]["scenarios"][scenario]
    return settings.get("replicates", config["calibration"]["replicates"])


def get_scenario_replicates(wildcards):
    """One result file per replicate of the scenario, 0..K-1: one job each, so they fan out across cluster nodes."""
    count = get_scenario_replicate_count(wildcards.scenario)
    return [
        f"results/calibration/replicates/{wildcards.scenario}/{replicate}.csv"
        for replicate in range(count)
    ]


def get_replicate_calibration(wildcards):
    """The calibration settings a replicate job sees (cara_eval.calibration.store.replicate_settings)."""
    return replicate_settings(config["calibration"], wildcards.scenario)


def get_replicate_model():
    """What the replicate and SBC fits read of config `model` (cara_eval.calibration.store.replicate_model_settings):
    tuning the primary fits' draws or the report's leaves their params, and so their outputs, as they are.
    """
    return replicate_model_settings(config["model"], config["calibration"])


def get_sbc_calibration():
    """The calibration settings an SBC replicate sees (cara_eval.calibration.store.sbc_replicate_settings)."""
    return sbc_replicate_settings(config["calibration"])


def get_scenario_coverages():
    """The per-scenario coverage tables the grid summary combines."""
    return [
        f"results/calibration/{scenario}/coverage.csv"
        for scenario in get_calibration_scenarios()
    ]


def get_calibration_replicate_counts():
    """K per scenario built, for the run record (the report counts the SBC replicates from their ranks table)."""
    counts = {
        scenario: get_scenario_replicate_count(scenario)
        for scenario in get_calibration_scenarios()
    }
    return {"scenarios": counts}


def get_sbc_replicates():
    """One rank file per simulation-based calibration replicate."""
    return [
        f"results/calibration/sbc/{replicate}.csv"
        for replicate in range(config["calibration"]["sbc"]["replicates"])
    ]


def get_calibration_outputs():
    """What `snakemake calibration` builds (not part of the default run): the grid, and SBC when it has replicates."""
    outputs = [
        "results/calibration/coverage.csv",
        "results/calibration/targets.csv",
        "results/calibration/coverage.png",
        "results/calibration/run.json",
    ]
    if config["calibration"]["sbc"]["replicates"]:
        outputs += [
            "results/calibration/sbc_ranks.csv",
            "results/calibration/sbc_uniformity.csv",
            "results/calibration/sbc_ranks.png",
        ]
    return outputs
