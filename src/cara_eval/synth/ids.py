"""Fake direct identifiers for synthetic extracts: PNC-style ids, names, crime references.

Deterministic and unique per force, so ingest's pseudonyms and repeat-offender checks behave as on real data;
the names include accented spellings so the Windows-encoded extract really needs its code page.
"""

import numpy as np
import pandas as pd

FIRST_NAMES = {
    "male": ["James", "Daniel", "Liam", "Mohammed", "Craig", "Gareth", "Ryan", "Seán", "Tomasz", "Kyle", "Dean",
             "Oliver", "Imran", "Lee", "Jamal", "Rhys"],
    "female": ["Sarah", "Zoë", "Siân", "Emma", "Aisha", "Kelly", "Chloé", "Gemma", "Priya", "Leanne", "Niamh",
               "Agnieszka", "Jade", "Hannah", "Renée", "Toni"],
}
SURNAMES = ["Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "O'Brien", "Khan", "Patel",
            "Wilson", "Thomas", "Roberts", "Kowalski", "Hughes", "Walker", "Wright", "Begum", "Brontë", "Nowak"]
# Affine permutation of 0..10^7-1 (multiplier coprime to 10): unique, deterministic, scrambled serials.
SERIAL_SPACE = 10**7
SERIAL_MULTIPLIER = 3_987_643


def serials(ordinal: np.ndarray, shift: int) -> np.ndarray:
    return (ordinal.astype(np.int64) * SERIAL_MULTIPLIER + shift) % SERIAL_SPACE


def _pnc_ids(rng, first_year: np.ndarray, serial: np.ndarray) -> list[str]:
    """PNC-style ids such as '2019/0123456X': year first recorded, serial, check letter."""
    letters = np.array(list("ABCDEFGHJKLMNPQRTUVWXYZ"))[rng.integers(0, 23, len(serial))]
    return [f"{y}/{s:07d}{c}" for y, s, c in zip(first_year.tolist(), serial.tolist(), letters.tolist())]


def _names(rng, sex: np.ndarray) -> np.ndarray:
    male_first = np.array(FIRST_NAMES["male"], dtype=object)[rng.integers(0, len(FIRST_NAMES["male"]), len(sex))]
    female_first = np.array(FIRST_NAMES["female"], dtype=object)[rng.integers(0, len(FIRST_NAMES["female"]), len(sex))]
    surname = np.array(SURNAMES, dtype=object)[rng.integers(0, len(SURNAMES), len(sex))]
    return np.where(sex == "male", male_first, female_first) + " " + surname


def crime_refs(prefix: np.ndarray, serial: np.ndarray, year: np.ndarray) -> list[str]:
    """Force crime references such as '44/0412345/19'."""
    return [f"{p}/{s:07d}/{y % 100:02d}" for p, s, y in zip(prefix.tolist(), serial.tolist(), year.tolist())]


def ordinal_within(force: pd.Series, offset: np.ndarray | int = 0) -> np.ndarray:
    """0, 1, 2, ... within each force (plus a per-row offset), for unique per-force serial numbers."""
    return force.groupby(force, observed=True).cumcount().to_numpy() + offset


def add_identifiers(cases: pd.DataFrame, rng, designs) -> None:
    """Fake direct identifiers: PNC-style ids, names, crime references (deterministic, unique per force)."""
    n = len(cases)
    index_year = cases["index_date"].dt.year.to_numpy()
    first_recorded = np.maximum(1990, index_year - rng.integers(0, 15, n))
    cases["offender_id"] = _pnc_ids(rng, first_recorded, serials(np.arange(n), 4_817_203))
    cases["victim_id"] = _pnc_ids(rng, first_recorded, serials(np.arange(n), 6_390_551))
    cases["offender_name"] = _names(rng, cases["sex"].to_numpy())
    cases["victim_name"] = _names(rng, cases["victim_sex"].to_numpy())
    prefix = cases["force"].map({d.force: d.crime_ref_prefix for d in designs}).to_numpy(dtype=object)
    cases["crime_ref"] = crime_refs(prefix, serials(ordinal_within(cases["force"]), 271_828), index_year)
