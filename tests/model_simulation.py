"""Small canonical-case simulator with a known piecewise-exponential hazard, for the model tests.

Independent of cara_eval.synth.population on purpose: the tests need exact control of the true effect, the
censoring and the flag-only forces, with a few hundred cases.
"""

import numpy as np
import pandas as pd

BASELINE_PER_DAY = (0.30 / 365, 0.18 / 365)  # intervals [0, 90) and [90, 365)


def simulate_cases(
    forces=("alpha", "bravo", "charlie"),
    n_per_force=400,
    log_hr=-0.7,
    together_shift=0.0,
    trend_per_year=0.05,
    flag_forces=(),
    seed=0,
):
    """Canonical cases: CARA from each force's (staggered) start year, historical controls before it."""
    rng = np.random.default_rng(seed)
    frames = []
    for position, force in enumerate(forces):
        n = n_per_force
        start_year = 2019 + position % 3
        index_date = pd.Timestamp("2017-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")
        period = index_date.year.to_numpy()
        cara = period >= start_year
        together = rng.random(n) < 0.5
        age = rng.integers(18, 70, n).astype(float)
        prior = rng.poisson(0.8, n).astype(float)
        female = rng.random(n) < 0.2
        log_scale = (
            rng.normal(0, 0.15) + trend_per_year * (period - 2019) + 0.3 * np.minimum(prior, 2) - 0.2 * female
            + cara * (log_hr + together_shift * together)
        )
        rates = np.exp(log_scale)[:, None] * np.asarray(BASELINE_PER_DAY)[None, :]
        exp_draw = rng.exponential(1.0, n)
        first_part = rates[:, 0] * 90
        event_day = np.where(
            exp_draw < first_part, exp_draw / rates[:, 0], 90 + (exp_draw - first_part) / rates[:, 1]
        )
        extract = pd.Timestamp("2023-06-30")
        followup = np.minimum(365, (extract - index_date).days.to_numpy()).astype(int)
        observed = event_day <= followup
        flag = force in flag_forces
        frames.append(
            pd.DataFrame(
                {
                    "case_id": [f"{force}-{i}" for i in range(n)],
                    "force": force,
                    "arm": np.where(cara, "cara", "comparison"),
                    "comparison_type": np.where(cara, None, "historical"),
                    "index_date": index_date,
                    "period": period,
                    "age": age,
                    "sex": np.where(female, "female", "male"),
                    "prior_da_incidents": prior,
                    "together_at_index": pd.array(together, dtype="boolean"),
                    "followup_days": followup,
                    "outcome_source": "flag" if flag else "events",
                    "any_reoffence": observed,
                    "days_to_first": np.where(observed & ~flag, np.floor(event_day), np.nan),
                    "event_observed": observed,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
