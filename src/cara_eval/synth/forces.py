"""Simulation profile of each synthetic force: study design, size, what it records, how incomplete it is.

The design dates and recorded fields here must agree with config/forces/<force>.yaml (a test checks it):
the mapping describes the extract, this profile decides what the simulated force puts into it.
"""

import csv
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cara_eval.common.paths import REPO_ROOT

DEFAULT_HARM_WEIGHTS = REPO_ROOT / "config" / "harm_weights.csv"
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
EXTRA_FORCE = re.compile(r"^force_(\d+)$")
SHAPED_FORCE = re.compile(r"^(trial|trial2y|caraonly|allmale|newsmall)_(\d+)$")
FIRST_EXTRA_FORCE = 10
MAX_FORCES = 43
DEFAULT_EXTRACT_DATE = pd.Timestamp("2024-03-31")


@dataclass(frozen=True)
class ForceDesign:
    force: str
    display_name: str
    cara_start: pd.Timestamp
    extract_date: pd.Timestamp
    comparison: str  # historical | contemporaneous | both
    size_weight: float  # relative number of eligible cases
    outcome_source: str = "events"  # events (later-offences table) | flag (pre-counted 12-month flag)
    not_supplied: tuple = ()  # canonical fields the force never records
    missing_rates: dict = field(default_factory=dict)  # sporadic missingness of covariates
    victim_contact_rate: float = 0.8
    crime_ref_prefix: str = "XX"
    allocation: str = "case_mix"  # after the start: case_mix (contemporaneous by case mix) | randomised | all_cara
    index_end: pd.Timestamp | None = None  # last index date (default: the extract date)
    fixed_values: dict = field(default_factory=dict)  # covariates every case shares (e.g. sex: male)


def _design(force, name, start, extract, comparison, weight, prefix, **kwargs):
    return ForceDesign(force, name, pd.Timestamp(start), pd.Timestamp(extract), comparison, weight,
                       crime_ref_prefix=prefix, **kwargs)


# The nine CARA forces of the domain brief. Sizes sum to 18,000 at the default n_cases.
NINE_FORCES = [
    _design("hampshire", "Hampshire", "2013-04-01", "2024-03-31", "both", 2500, "44",
            victim_contact_rate=0.92),
    _design("avon_and_somerset", "Avon and Somerset", "2016-10-01", "2024-03-31", "historical", 2000, "52",
            missing_rates={"ethnicity": 0.15, "prior_da_incidents": 0.05}),
    _design("cambridgeshire", "Cambridgeshire", "2019-01-07", "2024-03-31", "historical", 850, "35",
            outcome_source="flag", not_supplied=("ethnicity",), missing_rates={"together_at_index": 0.08}),
    _design("dorset", "Dorset", "2019-04-01", "2024-03-31", "historical", 1100, "55",
            not_supplied=("dash_risk",), missing_rates={"ethnicity": 0.10, "together_at_index": 0.05}),
    _design("leicestershire", "Leicestershire", "2018-06-04", "2024-03-31", "contemporaneous", 1500, "33",
            not_supplied=("victim_contacted", "victim_consulted"),
            missing_rates={"ethnicity": 0.20, "prior_da_incidents": 0.10}),
    _design("norfolk", "Norfolk", "2021-04-01", "2024-03-31", "historical", 150, "36",
            missing_rates={"ethnicity": 0.10, "together_at_index": 0.10}, victim_contact_rate=0.6),
    _design("thames_valley", "Thames Valley", "2017-09-04", "2024-03-31", "both", 2600, "43",
            outcome_source="flag", missing_rates={"ethnicity": 0.12, "prior_da_incidents": 0.08}),
    _design("west_midlands", "West Midlands", "2020-01-06", "2022-09-30", "historical", 4000, "20",
            missing_rates={"ethnicity": 0.25, "together_at_index": 0.12}, victim_contact_rate=0.7),
    _design("west_yorkshire", "West Yorkshire", "2015-07-01", "2024-03-31", "historical", 3300, "13",
            missing_rates={"ethnicity": 0.08, "prior_da_incidents": 0.05, "together_at_index": 0.05}),
]
NINE_BY_KEY = {d.force: d for d in NINE_FORCES}


def extra_force_design(number: int, seed: int) -> ForceDesign:
    """A national-scale force (force_10..force_43): canonical raw schema, staggered start, varied size."""
    rng = np.random.default_rng([seed, number])
    start = pd.Timestamp("2014-01-01") + pd.Timedelta(days=int(rng.integers(0, 8 * 365)))
    comparison = "both" if rng.random() < 0.2 else "historical"
    return ForceDesign(
        f"force_{number}", f"Force {number}", start.normalize(), DEFAULT_EXTRACT_DATE, comparison,
        float(np.clip(rng.lognormal(np.log(600), 0.8), 150, 4000)),
        missing_rates={"ethnicity": 0.1, "prior_da_incidents": 0.05},
        victim_contact_rate=float(rng.uniform(0.5, 0.95)), crime_ref_prefix=f"{number:02d}",
    )


# Every covariate a force may leave out: a randomised trial's extract may carry nothing but the arm.
COVARIATES = ("age", "offender_dob", "sex", "ethnicity", "prior_da_incidents", "together_at_index", "dash_risk",
              "victim_sex", "relationship")
TRIAL_YEAR = pd.Timestamp("2022-01-01")
NEW_SMALL_START = pd.Timestamp("2022-10-03")


def shaped_force_design(shape: str, number: int, seed: int) -> ForceDesign:
    """A force unlike the nine, for the shapes real data come in (key `<shape>_<n>`):

    `trial`: randomised trial, contemporaneous controls only, 12-month flag only, every case followed up for
    the whole year, index dates within one calendar year, nothing but the arm supplied; `trial2y`: the same
    over two calendar years; `caraonly`: CARA cases only (no comparison); `allmale`: a national-scale force
    whose offenders are all male (a covariate constant in every case); `newsmall`: a small force (size weight
    250, so 250 cases beside the nine at 18,250) that started late (NEW_SMALL_START), historical controls.
    """
    key = f"{shape}_{number}"
    if shape == "newsmall":
        return ForceDesign(key, f"New small {number}", NEW_SMALL_START, DEFAULT_EXTRACT_DATE, "historical", 250.0,
                           missing_rates={"ethnicity": 0.1}, crime_ref_prefix=f"{number:02d}")
    if shape in ("trial", "trial2y"):
        start = TRIAL_YEAR - pd.DateOffset(years=1) if shape == "trial2y" else TRIAL_YEAR
        end = TRIAL_YEAR + pd.DateOffset(years=1) - pd.Timedelta(days=1)
        return ForceDesign(key, f"Trial {number}", start, end + pd.Timedelta(days=400), "contemporaneous", 1.0,
                           outcome_source="flag", not_supplied=COVARIATES, allocation="randomised", index_end=end,
                           crime_ref_prefix=f"{number:02d}")
    base = extra_force_design(FIRST_EXTRA_FORCE + number, seed)
    if shape == "caraonly":
        return replace(base, force=key, display_name=f"CARA-only {number}", comparison="contemporaneous",
                       allocation="all_cara")
    return replace(base, force=key, display_name=f"All-male {number}", fixed_values={"sex": "male"})


def force_designs(forces: list[str] | None, n_forces: int | None, seed: int) -> list[ForceDesign]:
    """Designs of the requested forces: named ones, or the nine (first n_forces, or nine plus extras)."""
    if forces is None:
        n_forces = n_forces or len(NINE_FORCES)
        if not 1 <= n_forces <= MAX_FORCES:
            raise ValueError(f"n_forces must be between 1 and {MAX_FORCES}, got {n_forces}")
        forces = [d.force for d in NINE_FORCES[:n_forces]]
        forces += [f"force_{k}" for k in range(FIRST_EXTRA_FORCE, n_forces + 1)]
    designs = []
    for key in forces:
        extra = EXTRA_FORCE.match(key)
        shaped = SHAPED_FORCE.match(key)
        if key in NINE_BY_KEY:
            designs.append(NINE_BY_KEY[key])
        elif shaped:
            designs.append(shaped_force_design(shaped.group(1), int(shaped.group(2)), seed))
        elif extra and FIRST_EXTRA_FORCE <= int(extra.group(1)) <= MAX_FORCES:
            designs.append(extra_force_design(int(extra.group(1)), seed))
        else:
            raise ValueError(f"Unknown synthetic force {key!r}: use one of {sorted(NINE_BY_KEY)}, force_10..force_43 "
                             "or <shape>_<n> (shape trial, trial2y, caraonly, allmale, newsmall)")
    return designs


def load_harm_weights(path: Path | str = DEFAULT_HARM_WEIGHTS) -> dict:
    """offence_type -> harm weight in days, from config/harm_weights.csv."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["offence_type"]: float(row["weight_days"]) for row in csv.DictReader(handle)}


def synthetic_test_key(config_path: Path | str = DEFAULT_CONFIG) -> bytes:
    """The documented public key ingest uses for synthetic forces, so pseudonyms here match ingest's."""
    config = yaml.safe_load(Path(config_path).read_text())
    return config["pseudonymisation"]["synthetic_test_key"].encode("utf-8")
