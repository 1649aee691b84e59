"""Decisions of the calibration stage (its get_* functions), kept apart from its rules."""


wildcard_constraints:
    replicate=r"\d+",


def get_calibration_replicates():
    """One result file per replicate dataset, 0..K-1: the jobs fan out across cores or cluster nodes."""
    return [
        f"results/calibration/replicates/{replicate}.csv"
        for replicate in range(config["calibration"]["replicates"])
    ]


def get_calibration_outputs():
    """What `snakemake calibration` builds (not part of the default run)."""
    return ["results/calibration/coverage.csv", "results/calibration/coverage.png"]
