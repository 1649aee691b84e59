"""Synthetic force extracts with known truth: one seeded event process behind every outcome.

Why: the workflow must be runnable and checkable without personal data. Every outcome (flag, count,
harm, time to first) comes from one Poisson process of later offences per case, so the truth file can
state the effect each model should recover, computed as expectations from the true hazards.

``simulate_population`` gives the canonical (post-ingest) view with raw identifiers attached; the raw
writers in ``cara_eval.synth.raw`` turn it into the nine force formats. ``python -m cara_eval.synth`` is the CLI.
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cara_eval.common.schema import BOOLEAN_FIELDS, CARA_PROCESS_FIELDS, CASE_FIELDS
from cara_eval.ingest.parsing import whole_years
from cara_eval.ingest.pseudonymise import pseudonymise
from cara_eval.synth.forces import ForceDesign, force_designs, load_harm_weights, synthetic_test_key
from cara_eval.synth.ids import add_identifiers, crime_refs, ordinal_within, serials

FOLLOWUP_DAYS = 365
EARLIEST_INDEX = pd.Timestamp("2010-01-01")
# Piecewise-constant baseline hazard over follow-up (per day): reoffending clusters early.
HAZARD_BREAKS = np.array([0.0, 90.0, 180.0, 365.0, np.inf])
BASELINE_HAZARD = np.array([0.0012, 0.0008, 0.0005, 0.0003])
SHARE_DA_RELATED = 0.85
REOFFENCE_TYPE_PROBS = {
    "common_assault": 0.34, "criminal_damage": 0.12, "harassment": 0.12, "threatening_behaviour": 0.10,
    "domestic_theft": 0.04, "other_violence": 0.12, "stalking": 0.05, "breach_of_order": 0.07,
    "sexual": 0.01, "other": 0.03,
}
INDEX_OFFENCE_PROBS = {
    "common_assault": 0.45, "criminal_damage": 0.20, "harassment": 0.15, "threatening_behaviour": 0.12,
    "domestic_theft": 0.08,
}
ETHNICITY_PROBS = {"white": 0.80, "asian": 0.08, "black": 0.05, "mixed": 0.04, "other": 0.03}
# Hierarchy of the CARA effect (log hazard ratio for completers who have separated from the victim).
MU_LOG_HR = -0.25
TAU = 0.15
TOGETHER_LOG_HR_SHIFT = -0.15
COMPLETION_RATE = 0.85
NONCOMPLETER_EFFECT_SHARE = 0.3  # non-completers get 30% of the log-hazard effect
FORCE_BASELINE_SD = 0.2
# Log-hazard effects of case mix on reoffending; age centred at 35, prior incidents capped at 8.
OUTCOME_COEF = {"age": -0.015, "prior": 0.12, "male": 0.25, "medium": 0.30, "together": 0.10}
OFFENCE_LOG_HR = {"criminal_damage": -0.10, "harassment": 0.15, "threatening_behaviour": 0.05, "domestic_theft": -0.15}
TREND_SHAPES = ("linear", "nonlinear", "none")
LINEAR_TREND_SLOPE = -0.05  # log hazard per calendar year of the linear trend
MIN_CASES_PER_FORCE = 30


@dataclass(frozen=True)
class Hierarchy:
    """The generator's knobs that calibration scenarios turn; the defaults are the default data's values.

    ``together_log_hr_shift`` is added to the effect of CARA cases still with the victim (0 with mu_log_hr and tau
    0: no effect anywhere). ``trend_slope`` is the linear trend's fall per calendar year (log hazard); ``step_force`` gets a log-hazard
    step of ``step_log_hr`` from its CARA start on, in both arms: a force-specific break that is not CARA.
    """

    mu_log_hr: float = MU_LOG_HR
    tau: float = TAU
    together_log_hr_shift: float = TOGETHER_LOG_HR_SHIFT
    trend_slope: float = LINEAR_TREND_SLOPE
    step_force: str | None = None
    step_log_hr: float = 0.0


DEFAULT_HIERARCHY = Hierarchy()


@dataclass
class Population:
    """Canonical cases with raw identifiers, their later offences, and the truth behind both."""

    cases: pd.DataFrame
    reoffences: pd.DataFrame
    truth: dict


def secular_trend(year: np.ndarray, shape: str, slope: float = LINEAR_TREND_SLOPE) -> np.ndarray:
    """Log-hazard shift by calendar time: a steady fall (``slope`` per year), a rise then fall (so ITS models
    are tested), or none."""
    if shape == "linear":
        return slope * (year - 2017.0)
    if shape == "nonlinear":
        return 0.4 * np.exp(-0.5 * ((year - 2016.0) / 2.5) ** 2) - 0.2
    if shape == "none":
        return np.zeros_like(year)
    raise ValueError(f"trend_shape must be one of {TREND_SHAPES}, got {shape!r}")


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def _draw(rng, probs: dict, size: int) -> np.ndarray:
    return rng.choice(np.array(list(probs)), size=size, p=np.array(list(probs.values())))


def _decimal_year(dates: pd.Series) -> np.ndarray:
    return (dates.dt.year + (dates.dt.dayofyear - 1) / 365.25).to_numpy(dtype=float)


def _allocate(n_cases: int, designs: list[ForceDesign]) -> np.ndarray:
    """Cases per force in proportion to size weights, at least 30 each, summing exactly to n_cases."""
    if n_cases < MIN_CASES_PER_FORCE * len(designs):
        raise ValueError(f"n_cases={n_cases} is too small: {len(designs)} forces need {MIN_CASES_PER_FORCE} each")
    weights = np.array([d.size_weight for d in designs], dtype=float)
    sizes = np.maximum(MIN_CASES_PER_FORCE, np.floor(n_cases * weights / weights.sum())).astype(int)
    spare = sizes - MIN_CASES_PER_FORCE  # the floor lifted small forces: take the excess from the others
    sizes -= np.floor((sizes.sum() - n_cases) * spare / spare.sum()).astype(int) if sizes.sum() > n_cases else 0
    sizes[np.argmax(sizes)] += n_cases - sizes.sum()
    return sizes


def _simulate_force_cases(rng, design: ForceDesign, n: int) -> pd.DataFrame:
    """Case mix, index dates and arm for one force; case mix drifts with calendar time."""
    first = design.cara_start if design.comparison == "contemporaneous" else EARLIEST_INDEX
    after_last = design.extract_date if design.index_end is None else design.index_end + pd.Timedelta(days=1)
    span = (after_last - first).days
    index_date = first + pd.to_timedelta(np.sort(rng.integers(0, span, n)), unit="D")
    index_date = pd.Series(index_date)
    t = _decimal_year(index_date) - 2010.0
    age_years = np.minimum(85, 18 + np.floor(rng.gamma(3.0, 5.0 + 0.3 * t))).astype(int)
    male = rng.random(n) < 0.82 - 0.01 * t
    if "sex" in design.fixed_values:
        male = np.full(n, design.fixed_values["sex"] == "male")
    prior = rng.poisson(np.exp(0.05 * t))
    together = rng.random(n) < _logistic(0.2 - 0.08 * t)
    relationship = np.where(together, "current_partner", np.where(rng.random(n) < 0.85, "ex_partner", "family"))
    victim_male = np.where(rng.random(n) < 0.9, ~male, male)
    medium = rng.random(n) < 0.2 + 0.01 * t
    after_start = (index_date >= design.cara_start).to_numpy()
    if design.comparison == "historical" or design.allocation == "all_cara":
        cara = after_start
    elif design.allocation == "randomised":
        cara = after_start & (rng.random(n) < 0.5)
    else:  # eligible offenders after the start got CARA or another disposal, by case mix
        p_cara = _logistic(1.0 - 0.25 * np.minimum(prior, 8) + 0.5 * together - 0.02 * (age_years - 35) - 0.4 * medium)
        cara = after_start & (rng.random(n) < p_cara)
    dob = index_date - pd.to_timedelta(np.floor(age_years * 365.25 + rng.integers(1, 365, n)), unit="D")
    return pd.DataFrame({
        "force": design.force,
        "arm": np.where(cara, "cara", "comparison"),
        "comparison_type": np.where(cara, None, np.where(after_start, "contemporaneous", "historical")),
        "index_date": index_date,
        "disposal_date": (index_date + pd.to_timedelta(rng.geometric(0.08, n) - 1, unit="D")).clip(
            upper=design.extract_date),
        "offence_type": _draw(rng, INDEX_OFFENCE_PROBS, n),
        "dash_risk": np.where(medium, "medium", "standard"),
        "offender_dob": dob,
        "sex": np.where(male, "male", "female"),
        "ethnicity": _draw(rng, ETHNICITY_PROBS, n),
        "prior_da_incidents": prior.astype(float),
        "victim_sex": np.where(victim_male, "male", "female"),
        "relationship": relationship,
        "together_at_index": together,
        "completed": np.where(cara, rng.random(n) < COMPLETION_RATE, False),
        "victim_contacted": rng.random(n) < design.victim_contact_rate,
    })


def _force_step(cases: pd.DataFrame, designs: list[ForceDesign], hierarchy: Hierarchy) -> np.ndarray:
    """The step force's log-hazard step from its CARA start on, in both arms (zero without a step force)."""
    if hierarchy.step_force is None:
        return np.zeros(len(cases))
    start = {d.force: d.cara_start for d in designs}[hierarchy.step_force]
    after = (cases["force"] == hierarchy.step_force).to_numpy() & (cases["index_date"] >= start).to_numpy()
    return hierarchy.step_log_hr * after


def _log_hazard_case_mix(cases: pd.DataFrame, force_baseline: dict, trend_shape: str,
                         trend_slope: float = LINEAR_TREND_SLOPE) -> np.ndarray:
    """Log-hazard multiplier without the CARA effect: covariates, force baseline, secular trend."""
    offence_effect = cases["offence_type"].map(OFFENCE_LOG_HR).fillna(0.0).to_numpy()
    return (
        OUTCOME_COEF["age"] * (cases["age"].to_numpy() - 35)
        + OUTCOME_COEF["prior"] * np.minimum(cases["prior_da_incidents"].to_numpy(), 8)
        + OUTCOME_COEF["male"] * (cases["sex"] == "male").to_numpy()
        + OUTCOME_COEF["medium"] * (cases["dash_risk"] == "medium").to_numpy()
        + OUTCOME_COEF["together"] * cases["together_at_index"].to_numpy(dtype=bool)
        + offence_effect
        + cases["force"].map(force_baseline).to_numpy()
        + secular_trend(_decimal_year(cases["index_date"]), trend_shape, trend_slope)
    )


def _cara_log_hr(cases: pd.DataFrame, force_log_hr: dict, together_shift: float = TOGETHER_LOG_HR_SHIFT) -> np.ndarray:
    """Case-level CARA log hazard ratio: force effect, shifted when together, diluted for non-completers."""
    together = cases["together_at_index"].to_numpy(dtype=bool)
    completed = cases["completed"].fillna(False).to_numpy(dtype=bool)  # null (comparison) in canonical cases
    effect = cases["force"].map(force_log_hr).to_numpy() + together_shift * together
    effect = effect * np.where(completed, 1.0, NONCOMPLETER_EFFECT_SHARE)
    return np.where(cases["arm"].to_numpy() == "cara", effect, 0.0)


def _cumulative_baseline(days: np.ndarray) -> np.ndarray:
    """Integral of the baseline hazard from 0 to ``days``."""
    lengths = np.clip(days[:, None] - HAZARD_BREAKS[None, :-1], 0.0, np.diff(HAZARD_BREAKS)[None, :])
    return lengths @ BASELINE_HAZARD


def _simulate_events(rng, log_hazard: np.ndarray, horizon_days: np.ndarray, harm_weights: dict) -> pd.DataFrame:
    """Later offences of every case up to the extract date, piece by piece of the baseline hazard."""
    parts = []
    multiplier = np.exp(log_hazard)
    for start, stop, rate in zip(HAZARD_BREAKS[:-1], HAZARD_BREAKS[1:], BASELINE_HAZARD):
        length = np.clip(horizon_days - start, 0.0, stop - start)
        counts = rng.poisson(rate * multiplier * length)
        case = np.repeat(np.arange(len(counts)), counts)
        parts.append(pd.DataFrame({"case": case, "time": start + rng.random(len(case)) * length[case]}))
    events = pd.concat(parts, ignore_index=True)
    events["day"] = np.maximum(1, np.ceil(events["time"])).astype(int)
    events = events.sort_values(["case", "day"], kind="stable").reset_index(drop=True)
    events["offence_type"] = _draw(rng, REOFFENCE_TYPE_PROBS, len(events))
    events["da_related"] = rng.random(len(events)) < SHARE_DA_RELATED
    events["harm_weight"] = events["offence_type"].map(harm_weights).astype(float)
    return events.drop(columns="time")


def _window_outcomes(cases: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Canonical outcomes from the DA events inside each case's follow-up window."""
    followup = cases["followup_days"].to_numpy()
    in_window = events["da_related"] & (events["day"] <= followup[events["case"].to_numpy()])
    counted = events[in_window].groupby("case").agg(count=("day", "size"), harm=("harm_weight", "sum"),
                                                    first=("day", "min"))
    counted = counted.reindex(range(len(cases)))
    count = counted["count"].fillna(0.0).to_numpy()
    from_flag = (cases["outcome_source"] == "flag").to_numpy()
    return pd.DataFrame({
        "any_reoffence": count > 0,
        "reoffence_count": np.where(from_flag, np.nan, count),
        "harm": np.where(from_flag, np.nan, counted["harm"].fillna(0.0).to_numpy()),
        "days_to_first": np.where(from_flag, np.nan, counted["first"].to_numpy()),
        "event_observed": count > 0,
    }, index=cases.index)


def _effect_measures(cum_hazard: np.ndarray, log_hr: np.ndarray, expected_harm_per_event: float) -> dict:
    """True effects on the treated over 365 days: same cases with and without the CARA multiplier."""
    da_hazard_without = SHARE_DA_RELATED * cum_hazard
    da_hazard_with = da_hazard_without * np.exp(log_hr)
    risk_with, risk_without = (1 - np.exp(-da_hazard_with)).mean(), (1 - np.exp(-da_hazard_without)).mean()
    count_with, count_without = da_hazard_with.mean(), da_hazard_without.mean()
    mean_log_hr = float(log_hr.mean())
    return {
        "any_reoffence": {
            "risk_difference_per100": 100 * (risk_with - risk_without),
            "risk_ratio": risk_with / risk_without,
            "odds_ratio": (risk_with / (1 - risk_with)) / (risk_without / (1 - risk_without)),
            "log_hr": mean_log_hr,
            "risk_cara": risk_with,
            "risk_counterfactual": risk_without,
        },
        "reoffence_count": {
            "rate_ratio": count_with / count_without,
            "log_rate_ratio": float(np.log(count_with / count_without)),
            "difference_per100": 100 * (count_with - count_without),
        },
        "harm": {
            "ratio": count_with / count_without,
            "difference_per100": 100 * expected_harm_per_event * (count_with - count_without),
        },
        "time_to_first": {"hazard_ratio": float(np.exp(mean_log_hr)), "log_hr": mean_log_hr},
    }


def _truth(cases, log_hazard, log_hr, designs, force_log_hr, force_baseline, harm_weights, seed, trend_shape,
           hierarchy: Hierarchy) -> dict:
    """The truth file: hierarchy, force draws and the true effects on the treated, pooled and by group."""
    expected_harm = sum(p * harm_weights[t] for t, p in REOFFENCE_TYPE_PROBS.items())
    cara = (cases["arm"] == "cara").to_numpy()
    cum_hazard = _cumulative_baseline(np.full(len(cases), float(FOLLOWUP_DAYS))) * np.exp(log_hazard)

    def measures(mask):
        mask = mask & cara
        return _effect_measures(cum_hazard[mask], log_hr[mask], expected_harm) if mask.any() else None

    groups = {"pooled": measures(np.ones(len(cases), bool))}
    groups["by_force"] = {d.force: measures((cases["force"] == d.force).to_numpy()) for d in designs}
    together = cases["together_at_index"].to_numpy(dtype=bool)
    groups["by_relationship"] = {"together": measures(together), "separated": measures(~together)}
    outcomes = {}
    for outcome in ("any_reoffence", "reoffence_count", "harm", "time_to_first"):
        outcomes[outcome] = {
            "pooled": _rounded(groups["pooled"][outcome]),
            "by_force": {f: _rounded(m[outcome]) for f, m in groups["by_force"].items() if m},
            "by_relationship": {g: _rounded(m[outcome]) for g, m in groups["by_relationship"].items() if m},
        }
    forces = {}
    for d in designs:
        in_force = cases["force"] == d.force
        forces[d.force] = {
            "log_hr": round(force_log_hr[d.force], 6), "baseline_log_hazard": round(force_baseline[d.force], 6),
            "cara_start": d.cara_start.date().isoformat(),
            "extract_date": d.extract_date.date().isoformat(), "comparison": d.comparison,
            "n_cases": int(in_force.sum()), "n_cara": int((in_force & (cases["arm"] == "cara")).sum()),
        }
    stated = {"mu_log_hr": hierarchy.mu_log_hr, "tau": hierarchy.tau,
              "together_log_hr_shift": hierarchy.together_log_hr_shift}
    if hierarchy != DEFAULT_HIERARCHY:  # a calibration scenario states every knob; the default data's truth is unchanged
        stated = asdict(hierarchy)
    return {
        "seed": seed, "trend_shape": trend_shape, "followup_days": FOLLOWUP_DAYS, "n_cases": len(cases),
        "hierarchy": {**stated, "completion_rate": COMPLETION_RATE, "noncompleter_effect_share": NONCOMPLETER_EFFECT_SHARE},
        "hazard": {"baseline_per_day": dict(zip(["0-90", "90-180", "180-365", "365+"], BASELINE_HAZARD.tolist())),
                   "share_da_related": SHARE_DA_RELATED, "case_mix_log_hr": OUTCOME_COEF,
                   "offence_log_hr": OFFENCE_LOG_HR, "trend_shape": trend_shape},
        "forces": forces,
        "outcomes": outcomes,
    }


def _rounded(measures: dict) -> dict:
    return {k: round(float(v), 6) for k, v in measures.items()}


def simulate_population(
    n_cases: int,
    forces: list[str] | None,
    seed: int,
    trend_shape: str = "linear",
    n_forces: int | None = None,
    *,
    missingness: bool = True,
    pseudonyms: bool = True,
    harm_weights: dict | None = None,
    hierarchy: Hierarchy = DEFAULT_HIERARCHY,
) -> Population:
    """Canonical cases (as ingest should produce them), later offences and truth, deterministic in ``seed``.

    ``forces``: force keys (default: the nine, or nine plus force_10..force_<n_forces> when n_forces > 9).
    ``missingness=False`` gives the same population with every covariate observed (for imputation checks):
    missingness uses its own random stream, so nothing else changes. ``pseudonyms=False`` leaves case_id,
    offender_pid and victim_pid null: the raw writers need only raw ids, and the HMAC is half the run time
    at national scale. ``hierarchy``: the effect hierarchy, trend slope and step (calibration scenarios).
    """
    designs = force_designs(forces, n_forces, seed)
    harm_weights = harm_weights or load_harm_weights()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    rng_cases, rng_effects, rng_events, rng_missing, rng_ids = streams

    sizes = _allocate(n_cases, designs)
    cases = pd.concat([_simulate_force_cases(rng_cases, d, n) for d, n in zip(designs, sizes)], ignore_index=True)
    cases["force"] = pd.Categorical(cases["force"], categories=[d.force for d in designs])
    cases["age"] = whole_years(cases["offender_dob"], cases["index_date"]).astype(float)
    force_log_hr = dict(zip([d.force for d in designs],
                            rng_effects.normal(hierarchy.mu_log_hr, hierarchy.tau, len(designs))))
    force_baseline = dict(zip([d.force for d in designs], rng_effects.normal(0.0, FORCE_BASELINE_SD, len(designs))))
    log_hazard = _log_hazard_case_mix(cases, force_baseline, trend_shape, hierarchy.trend_slope)
    log_hazard += _force_step(cases, designs, hierarchy)
    log_hr = _cara_log_hr(cases, force_log_hr, hierarchy.together_log_hr_shift)

    extract = cases["force"].astype(str).map({d.force: d.extract_date for d in designs})
    horizon = (extract - cases["index_date"]).dt.days.to_numpy()
    cases["followup_days"] = np.minimum(FOLLOWUP_DAYS, horizon)
    cases["outcome_source"] = cases["force"].map({d.force: d.outcome_source for d in designs})
    events = _simulate_events(rng_events, log_hazard + log_hr, horizon.astype(float), harm_weights)
    cases = cases.join(_window_outcomes(cases, events))
    truth = _truth(cases, log_hazard, log_hr, designs, force_log_hr, force_baseline, harm_weights, seed, trend_shape,
                   hierarchy)

    _add_cara_process(cases, rng_cases)
    add_identifiers(cases, rng_ids, designs)
    if missingness:
        _apply_missingness(cases, rng_missing, designs)
    reoffences = _reoffence_table(cases, events, designs)
    return Population(cases=_canonical(cases, pseudonyms), reoffences=reoffences, truth=truth)


def _add_cara_process(cases: pd.DataFrame, rng) -> None:
    """Workshops, completion and breach consistent with each other; victim consultation after contact."""
    n = len(cases)
    completed = cases["completed"].to_numpy(dtype=bool)
    cases["workshop1_attended"] = completed | (rng.random(n) < 0.5)
    cases["workshop2_attended"] = completed
    cases["breached"] = ~completed
    cases["victim_consulted"] = cases["victim_contacted"].to_numpy(dtype=bool) & (rng.random(n) < 0.7)


def _apply_missingness(cases: pd.DataFrame, rng, designs) -> None:
    """Sporadic gaps, more common in older records (missing at random given period), and whole fields never
    recorded by a force. Only what ingest would see changes; outcomes already used the true values."""
    older_factor = np.where((cases["index_date"].dt.year < 2016).to_numpy(), 1.5, 0.75)
    columns = sorted({c for d in designs for c in d.missing_rates} | {c for d in designs for c in d.not_supplied})
    for column in columns:
        rate = cases["force"].map({d.force: d.missing_rates.get(column, 0.0) for d in designs}).to_numpy(dtype=float)
        never = cases["force"].map({d.force: column in d.not_supplied for d in designs}).to_numpy(dtype=bool)
        gap = never | (rng.random(len(cases)) < rate * older_factor)
        cases[column] = cases[column].astype(object).where(~gap, None)


def _reoffence_table(cases: pd.DataFrame, events: pd.DataFrame, designs) -> pd.DataFrame:
    """Later offences as a force would list them: offender id, own crime reference, date, type, DA flag."""
    case = events["case"].to_numpy()
    table = pd.DataFrame({
        "force": cases["force"].to_numpy()[case],
        "offender_id": cases["offender_id"].to_numpy()[case],
        "offence_date": cases["index_date"].to_numpy()[case] + pd.to_timedelta(events["day"].to_numpy(), unit="D"),
        "offence_type": events["offence_type"].to_numpy(),
        "da_related": events["da_related"].to_numpy(),
    })
    cases_in_force = table["force"].map(cases["force"].value_counts()).to_numpy(dtype=np.int64)
    prefix = table["force"].map({d.force: d.crime_ref_prefix for d in designs}).to_numpy(dtype=object)
    serial = serials(ordinal_within(table["force"], cases_in_force), 271_828)
    table.insert(2, "crime_ref", crime_refs(prefix, serial, table["offence_date"].dt.year.to_numpy()))
    table["force"] = table["force"].astype(str)
    return table


RAW_IDENTIFIERS = ["offender_id", "victim_id", "crime_ref", "offender_name", "victim_name", "offender_dob"]


def _pseudonyms(cases: pd.DataFrame, column: str, kind: str) -> pd.Series:
    """The HMAC pseudonyms ingest gives synthetic forces (keyed per force, documented test key)."""
    key = synthetic_test_key()
    per_force = [pseudonymise(group[column], key, kind, force) for force, group in cases.groupby("force", observed=True)]
    return pd.concat(per_force).astype(object)


def _canonical(cases: pd.DataFrame, pseudonyms: bool) -> pd.DataFrame:
    """Canonical column order and dtypes (docs/contracts.md), pseudonyms as ingest makes them, raw ids last."""
    out = cases.copy()
    for kind, column, target in (("case", "crime_ref", "case_id"), ("offender", "offender_id", "offender_pid"),
                                 ("victim", "victim_id", "victim_pid")):
        out[target] = _pseudonyms(out, column, kind) if pseudonyms else None
    out["force"] = out["force"].astype(str)
    out["period"] = out["index_date"].dt.year.astype("int64")
    for column in BOOLEAN_FIELDS:
        out[column] = out[column].astype("boolean")
    cara = out["arm"] == "cara"
    for column in CARA_PROCESS_FIELDS:
        out[column] = out[column].where(cara, pd.NA)
    for column in ("age", "prior_da_incidents", "reoffence_count", "harm", "days_to_first"):
        out[column] = out[column].astype(float)
    out["followup_days"] = out["followup_days"].astype("int64")
    for column in ("any_reoffence", "event_observed"):
        out[column] = out[column].astype("boolean")
    for column in ("index_date", "disposal_date", "offender_dob"):
        out[column] = out[column].astype("datetime64[ns]")
    return out[CASE_FIELDS + RAW_IDENTIFIERS].reset_index(drop=True)

