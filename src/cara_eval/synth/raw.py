"""Raw force extracts from a simulated population: each force's own format, quirks and defects.

The writer is the inverse of ingest: it reads the force's mapping file (config/forces/<force>.yaml) and
renders every canonical value the way that mapping says the force records it (column names, codes,
booleans, date formats, file type). What a mapping cannot express (free-text offence spellings, extra
columns, duplicated and impossible rows, ineligible and repeat cases) comes from FORCE_QUIRKS, and every
injected row is counted under the ingest reason it should trigger, so ingest tests can check quarantine.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cara_eval.common.schema import BOOLEAN_FIELDS, OFFENCE_TYPES
from cara_eval.ingest.mapping import CASE_RAW_FIELDS, REOFFENCE_RAW_FIELDS, load_mapping
from cara_eval.ingest.parsing import EXCEL_EPOCH
from cara_eval.synth.forces import force_designs
from cara_eval.synth.ids import crime_refs

# Free-text offence names as forces type them; the first of each list is the clean display name.
OFFENCE_NAMES = {
    "common_assault": ["Common Assault", "common assualt", "ASSAULT - COMMON", "Common assault and battery",
                       "Battery", "Assault (common)"],
    "criminal_damage": ["Criminal Damage", "CRIMINAL DAMAGE", "Crim Damage", "criminal damage to property",
                        "Criminal damage (under 5000)"],
    "harassment": ["Harassment", "Harrassment", "HARASSMENT - PHA 1997", "harrasment"],
    "threatening_behaviour": ["Threatening Behaviour", "threatening behavior", "S4 Public Order - Threatening Behaviour",
                              "Threatening behaviour (s.4 POA)"],
    "domestic_theft": ["Domestic Theft", "Theft - Domestic", "theft (domestic)", "Theft from partner"],
    "other_violence": ["Assault Occasioning ABH", "ABH", "GBH", "Wounding/GBH", "Assault with injury"],
    "sexual": ["Sexual Assault", "sexual assault on female"],
    "stalking": ["Stalking", "stalking (s2a PHA)"],
    "breach_of_order": ["Breach of Non-Molestation Order", "Breach of DVPO", "Breach of restraining order"],
    "other": ["Other", "Public Order - Other", "Drunk and disorderly"],
}
DATE_FIELDS = ("index_date", "disposal_date", "offender_dob", "offence_date")
NUMBER_FIELDS = ("age", "prior_da_incidents", "prior_da_convictions")
# Ineligible and defective rows get identifiers from ranges the population never uses.
INJECTED_PNC_YEAR = 1989
INJECTED_SERIAL_OFFSET = 9_000_000

# Per force what a mapping cannot say: offence spelling (variants | clean | canonical), exact duplicate rows, rows to
# inject (INJECTION_KINDS), name order, an extra money column. Hampshire is the one complete, clean extract.
FORCE_QUIRKS = {
    "hampshire": {"offence_names": "clean", "sort_by_date": True},
    "avon_and_somerset": {"duplicate_rows": 6, "inject": {"unparseable_date": 3, "high_dash": 5, "ineligible_offence": 3}},
    "cambridgeshire": {"inject": {"under_18": 2, "high_dash": 3, "repeat_offender": 2}},
    "dorset": {"inject": {"dob_in_future": 3, "ineligible_offence": 2, "repeat_offender": 3}},
    "leicestershire": {"inject": {"disposal_before_index": 4, "prior_da_conviction": 4, "high_dash": 3}},
    "norfolk": {"duplicate_rows": 1, "inject": {"under_18": 1}},
    "thames_valley": {"duplicate_rows": 8,
                      "inject": {"disposal_before_index": 5, "unparseable_date": 2, "prior_da_conviction": 3}},
    "west_midlands": {"inject": {"under_18": 4, "ineligible_offence": 4, "repeat_offender": 3}},
    "west_yorkshire": {"surname_first": True, "pound_column": "Damage Value", "duplicate_rows": 3,
                       "inject": {"repeat_offender": 4, "high_dash": 3, "prior_da_conviction": 2}},
}
EXTRA_FORCE_QUIRKS = {"offence_names": "canonical"}


def _offence_spellings(style: str) -> dict:
    """Offence type -> names a force writes: every variant, the clean display name, or the canonical key."""
    if style == "canonical":
        return {t: [t] for t in OFFENCE_NAMES}
    return {t: names[:1] if style == "clean" else names for t, names in OFFENCE_NAMES.items()}


def _rendered_dates(values: pd.Series, date_format: str, file_format: str) -> pd.Series:
    """Dates as the force writes them; Excel and parquet keep real dates where the format is iso."""
    values = values.astype("datetime64[ns]")
    if date_format == "excel_serial":
        return ((values - EXCEL_EPOCH).dt.days).astype("Int64").astype(object).where(values.notna(), None)
    if file_format in ("excel", "parquet") and date_format == "iso":
        return values
    return values.dt.strftime("%Y-%m-%d" if date_format == "iso" else date_format)


def impossible_day(date_format: str, year: int) -> str:
    """A 31 February in the force's own date format (e.g. '31/02/2019'): parses nowhere."""
    pattern = "%Y-%m-%d" if date_format == "iso" else date_format
    return dt.date(year, 1, 1).strftime(pattern.replace("%d", "31").replace("%m", "02"))


def _inverse_codes(codes: dict) -> dict:
    """canonical value -> every raw code the force uses for it."""
    inverse = {}
    for raw, canonical in codes.items():
        inverse.setdefault(canonical, []).append(raw)
    return inverse


def _choose(rng, values: pd.Series, options: dict) -> np.ndarray:
    """Each canonical value replaced by one of its raw spellings (drawn, so every spelling occurs)."""
    codes, uniques = pd.factorize(values)
    out = np.full(len(values), None, dtype=object)
    for code, canonical in enumerate(uniques):
        rows = codes == code
        spellings = np.array(options[canonical], dtype=object)
        out[rows] = spellings[rng.integers(0, len(spellings), rows.sum())]
    return out


def render_table(frame: pd.DataFrame, table: dict, fields: list[str], quirks: dict, rng) -> pd.DataFrame:
    """Canonical values -> the force's columns, codes, booleans and date formats (inverse of ingest)."""
    file_format = table["format"]
    codes = table.get("codes") or {}
    boolean = table.get("boolean") or {"true": ["Y"], "false": ["N"]}
    date_formats = table.get("date_formats") or {}
    out = {}
    for field in fields:
        column = table["columns"].get(field)
        if not column:
            continue
        values = frame[field]
        if field in DATE_FIELDS:
            rendered = _rendered_dates(values, date_formats.get(field, "iso"), file_format)
        elif field in BOOLEAN_FIELDS + ["reoffended_12m", "da_related"]:
            rendered = values.astype("boolean") if file_format == "parquet" else _choose(
                rng, values.astype(object), {True: boolean["true"], False: boolean["false"]})
        elif field == "offence_type":
            rendered = _choose(rng, values, _offence_spellings(quirks.get("offence_names", "variants")))
        elif field in codes:
            rendered = _choose(rng, values, _inverse_codes(codes[field]))
        elif field in NUMBER_FIELDS and file_format != "parquet":
            rendered = values.astype("Int64").astype(object).where(values.notna(), None)
        elif field in ("offender_name", "victim_name") and quirks.get("surname_first"):
            parts = values.str.split(" ", n=1)
            rendered = parts.str[1] + ", " + parts.str[0]
        else:
            rendered = values
        out[column] = rendered.to_numpy() if isinstance(rendered, pd.Series) else rendered
    rendered = pd.DataFrame(out)
    if file_format == "csv":
        rendered = rendered.astype(object).where(rendered.notna(), "")
    return rendered


def _raw_case_frame(cases: pd.DataFrame) -> pd.DataFrame:
    """Canonical cases as raw fields: prior convictions 0 (they were eligible), flag = DA reoffence seen."""
    frame = cases.copy()
    frame["prior_da_convictions"] = 0.0
    frame["reoffended_12m"] = frame["any_reoffence"]
    frame["bad_index_date"] = None
    return frame.reset_index(drop=True)


def _fresh_identities(rows: pd.DataFrame, design, first_ordinal: int, rng) -> pd.DataFrame:
    """New offender, victim and case identifiers for injected rows (ranges the population never uses)."""
    serial = np.arange(first_ordinal, first_ordinal + len(rows)) + INJECTED_SERIAL_OFFSET
    letters = np.array(list("ABCDEFGHJKLMNPQRTUVWXYZ"))[rng.integers(0, 23, len(rows))]
    rows["offender_id"] = [f"{INJECTED_PNC_YEAR}/{s:07d}{c}" for s, c in zip(serial, letters)]
    rows["victim_id"] = [f"{INJECTED_PNC_YEAR - 1}/{s:07d}{c}" for s, c in zip(serial, letters)]
    rows["crime_ref"] = crime_refs(np.full(len(rows), design.crime_ref_prefix, dtype=object), serial,
                                   rows["index_date"].dt.year.to_numpy())
    rows["reoffended_12m"] = False
    return rows


def _repeat_rows(frame: pd.DataFrame, reoffences: pd.DataFrame, design, count: int, rng) -> pd.DataFrame:
    """Offenders appearing twice: a later eligible-type DA offence becomes a second index case with the
    reoffence's own crime reference (ingest keeps the earliest case, so this one is a repeat)."""
    later = reoffences[reoffences["da_related"] & reoffences["offence_type"].isin(OFFENCE_TYPES)]
    later = later.drop_duplicates("offender_id")
    picked = later.iloc[np.sort(rng.choice(len(later), min(count, len(later)), replace=False))]
    rows = frame.set_index("offender_id").loc[picked["offender_id"]].reset_index()
    rows["index_date"] = picked["offence_date"].to_numpy()
    rows["crime_ref"] = picked["crime_ref"].to_numpy()
    rows["offence_type"] = picked["offence_type"].to_numpy()
    rows["disposal_date"] = (rows["index_date"] + pd.Timedelta(days=7)).clip(upper=design.extract_date)
    rows["reoffended_12m"] = False
    return rows


# Injected row kind -> (ingest reason it triggers, raw field the force must record for it).
INJECTION_KINDS = {
    "unparseable_date": ("quarantined:unparseable_date", "index_date"),
    "dob_in_future": ("quarantined:impossible_date", "offender_dob"),
    "disposal_before_index": ("quarantined:impossible_date", "disposal_date"),
    "high_dash": ("ineligible:dash_risk_not_eligible", "dash_risk"),
    "ineligible_offence": ("ineligible:offence_type_not_eligible", None),
    "under_18": ("ineligible:under_min_age", None),
    "prior_da_conviction": ("ineligible:prior_da_conviction", "prior_da_convictions"),
    "repeat_offender": ("ineligible:repeat_offender", None),
}


def _corrupt(kind: str, rows: pd.DataFrame, design, date_format: str, rng) -> None:
    """Make copied rows into the defect or ineligible case they stand for (in place)."""
    n = len(rows)
    if kind == "unparseable_date":
        rows["bad_index_date"] = [impossible_day(date_format, y) for y in rows["index_date"].dt.year]
    elif kind == "dob_in_future":
        rows["offender_dob"] = design.extract_date + pd.to_timedelta(rng.integers(30, 400, n), unit="D")
    elif kind == "disposal_before_index":
        rows["disposal_date"] = rows["index_date"] - pd.to_timedelta(rng.integers(1, 30, n), unit="D")
    elif kind == "high_dash":
        rows["dash_risk"] = "high"
    elif kind == "ineligible_offence":
        rows["offence_type"] = "other_violence"
    elif kind == "under_18":
        rows["age"] = rng.integers(16, 18, n).astype(float)
        rows["offender_dob"] = rows["index_date"] - pd.to_timedelta(np.floor(rows["age"] * 365.25) + 100, unit="D")
    elif kind == "prior_da_conviction":
        rows["prior_da_convictions"] = rng.integers(1, 3, n).astype(float)


def inject_rows(frame, reoffences, mapping, design, inject: dict, rng) -> tuple[pd.DataFrame, dict]:
    """Extra rows, each meant to trigger one ingest reason; returns them and their counts by reason."""
    date_format = (mapping["cases"].get("date_formats") or {}).get("index_date", "iso")
    parts, counts, ordinal = [], {}, 0
    for kind, count in inject.items():
        reason, needed = INJECTION_KINDS[kind]
        if needed and not mapping["cases"]["columns"].get(needed):
            raise ValueError(f"force {mapping['force']}: cannot inject {kind}: the mapping has no {needed} column")
        if kind == "repeat_offender":
            rows = _repeat_rows(frame, reoffences, design, count, rng)
        else:
            rows = _fresh_identities(frame.iloc[np.sort(rng.choice(len(frame), count, replace=False))].copy(),
                                     design, ordinal, rng)
            ordinal += count
        _corrupt(kind, rows, design, date_format, rng)
        parts.append(rows)
        counts[reason] = counts.get(reason, 0) + len(rows)
    return pd.concat(parts, ignore_index=True) if parts else frame.iloc[:0], counts


def _pound_column(frame: pd.DataFrame, rng) -> np.ndarray:
    """A free-text money column a Windows export carries ('£120' for criminal damage); ingest ignores it."""
    amounts = rng.integers(20, 900, len(frame))
    return np.where(frame["offence_type"] == "criminal_damage", [f"£{a}" for a in amounts], "")


def _write_tables(tables: list[tuple[dict, pd.DataFrame]], folder: Path) -> None:
    """CSV with the mapping's encoding and delimiter (CRLF for Windows code pages), Excel workbooks with
    one sheet per table and a fixed creation date (same seed, same bytes), or parquet."""
    workbooks = {}
    for table, data in tables:
        path = folder / table["file"]
        if table["format"] == "csv":
            encoding = table.get("encoding") or "utf-8"
            data.to_csv(path, index=False, sep=table.get("delimiter") or ",", encoding=encoding,
                        lineterminator="\r\n" if encoding.lower().startswith("cp") else "\n")
        elif table["format"] == "excel":
            workbooks.setdefault(path, []).append((table["sheet"], data))
        else:
            data.to_parquet(path, index=False)
    for path, sheets in workbooks.items():
        with pd.ExcelWriter(path, engine="xlsxwriter", datetime_format="dd/mm/yyyy") as writer:
            writer.book.set_properties({"created": dt.datetime(2024, 1, 1)})
            for sheet, data in sheets:
                data.to_excel(writer, sheet_name=sheet, index=False)


def write_force(cases: pd.DataFrame, reoffences: pd.DataFrame, mapping: dict, design, quirks: dict,
                folder: Path, rng) -> dict:
    """One force's raw extract files; returns the rows written and injected, by ingest reason."""
    frame = _raw_case_frame(cases)
    injected, counts = inject_rows(frame, reoffences, mapping, design, quirks.get("inject", {}), rng)
    rows = pd.concat([frame, injected], ignore_index=True)
    rendered = render_table(rows, mapping["cases"], CASE_RAW_FIELDS, quirks, rng)
    bad = rows["bad_index_date"].notna().to_numpy()
    rendered.loc[bad, mapping["cases"]["columns"]["index_date"]] = rows.loc[bad, "bad_index_date"].to_numpy()
    if quirks.get("pound_column"):
        rendered[quirks["pound_column"]] = _pound_column(rows, rng)
    # Exact duplicates are copies of rendered clean rows, so every cell matches.
    duplicates = np.sort(rng.choice(len(frame), quirks.get("duplicate_rows", 0), replace=False))
    if len(duplicates):
        counts["quarantined:duplicate_row"] = len(duplicates)
    rendered = pd.concat([rendered, rendered.iloc[duplicates]], ignore_index=True)
    index_dates = np.concatenate([rows["index_date"].to_numpy(), rows["index_date"].to_numpy()[duplicates]])
    order = np.argsort(index_dates, kind="stable") if quirks.get("sort_by_date") else rng.permutation(len(rendered))
    rendered = rendered.iloc[order].reset_index(drop=True)
    tables = [(mapping["cases"], rendered)]
    if mapping["reoffences"]:
        later = reoffences.sort_values(["offence_date", "crime_ref"], kind="stable").reset_index(drop=True)
        tables.append((mapping["reoffences"], render_table(later, mapping["reoffences"], REOFFENCE_RAW_FIELDS,
                                                           quirks, rng)))
    folder.mkdir(parents=True, exist_ok=True)
    _write_tables(tables, folder)
    return {"rows_written": len(rendered), "clean_cases": len(frame),
            "reoffence_rows_written": len(reoffences) if mapping["reoffences"] else 0, **counts}


def identity_mapping(design) -> dict:
    """Mapping of a force supplied in the canonical raw schema (parquet, every field under its own name);
    a flag-only force has no reoffences table but the pre-counted 12-month flag."""
    flag = design.outcome_source == "flag"
    named = [f for f in ("offender_dob", "offender_name", "victim_name") if f not in design.not_supplied]
    return {
        "force": design.force,
        "display_name": design.display_name,
        "synthetic": True,
        "design": {"cara_start": design.cara_start.date().isoformat(),
                   "extract_date": design.extract_date.date().isoformat(), "comparison": design.comparison},
        "cases": {"file": f"{design.force}_cases.parquet", "format": "parquet", "identity": True,
                  "columns": {f: f for f in named}, "not_supplied": list(design.not_supplied)},
        "reoffences": None if flag else {"file": f"{design.force}_reoffences.parquet", "format": "parquet",
                                         "identity": True},
    }


def write_raw_extracts(population, raw_dir, mappings_dir, seed: int, mappings_out=None) -> dict:
    """Every force's raw files under raw_dir/<force>/; returns injected-defect counts per force.

    The nine forces are rendered through their mapping files in mappings_dir; national-scale forces
    (force_10...) get an identity mapping written to mappings_out, which also receives copies of the
    nine, so mappings_out is a complete mappings directory for the run.
    """
    forces = list(population.truth["forces"])
    designs = dict(zip(forces, force_designs(forces, None, seed)))
    mappings_out = Path(mappings_out) if mappings_out else None
    if mappings_out:
        mappings_out.mkdir(parents=True, exist_ok=True)
    case_groups = dict(tuple(population.cases.groupby("force", sort=False)))
    reoffence_groups = dict(tuple(population.reoffences.groupby("force", sort=False)))
    defects = {}
    for number, force in enumerate(forces):
        source = Path(mappings_dir) / f"{force}.yaml"
        if force in FORCE_QUIRKS:
            quirks = FORCE_QUIRKS[force]
            if mappings_out and mappings_out.resolve() != Path(mappings_dir).resolve():
                (mappings_out / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        else:
            if not mappings_out:
                raise ValueError(f"force {force} needs mappings_out: its identity mapping is written there")
            source = mappings_out / f"{force}.yaml"
            source.write_text(yaml.safe_dump(identity_mapping(designs[force]), sort_keys=False), encoding="utf-8")
            quirks = EXTRA_FORCE_QUIRKS
        rng = np.random.default_rng([seed, number])
        defects[force] = write_force(case_groups[force], reoffence_groups.get(force, population.reoffences.iloc[:0]),
                                     load_mapping(source), designs[force], quirks, Path(raw_dir) / force, rng)
    return defects
