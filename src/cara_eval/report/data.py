"""The report's inputs: the manifest written by `cara_eval.report.render` and the result tables it names, read once and
checked against the contract (docs/contracts.md).

Everything shown is computed from these by `cara_eval.report.sections` (one module per report/_<section>.qmd
partial) with the helpers of `cara_eval.report.formatting`.
"""

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from cara_eval.report.tilemap import load_tiles

# Columns each input must have (docs/contracts.md, "Result files the report reads").
CONTRACT_COLUMNS = {
    "row_accounting": ["force", "rows_read", "clean", "ineligible", "quarantined"],
    "completeness": ["force", "field", "share_missing", "structural"],
    "followup_coverage": ["force", "arm", "n_cases", "share_full_followup", "median_followup_days"],
    "cohort_sizes": ["force", "period", "arm", "n_cases"],
    "case_mix": ["force", "covariate", "level", "cara_mean", "comparison_mean", "smd"],
    "process_measures": ["force", "n_cara", "victim_contacted_share", "victim_consulted_share", "n_recorded"],
    "data_specification": ["field", "dtype", "allowed_values", "meaning", "forces_supplying"],
    "estimands": ["estimand", "scope", "level", "mean", "sd", "q05", "q50", "q95", "prob_reduction", "gate_passed"],
    "forest": ["force", "method", "mean", "q05", "q95", "n_cases"],
    "terms": ["term", "included", "reason"],
    # Secondary outcomes (cara_eval.outcomes.models): present only for the outcomes switched on in config.
    **{f"outcome_{name}_estimands": ["estimand", "scope", "level", "mean", "sd", "q05", "q50", "q95", "prob_reduction",
                                     "gate_passed"] for name in ("reoffence_count", "harm")},
    "gate": ["dataset", "parameter", "r_hat", "ess_bulk", "ess_tail", "divergences", "passed"],
    "crosscheck_estimates": ["method", "scope", "force", "estimand", "estimate", "ci_low", "ci_high", "p_value", "note"],
    "crosscheck_balance": ["force", "covariate", "level", "cara_mean", "comparison_mean_before",
                           "comparison_mean_after", "smd_before", "smd_after"],
    "costbenefit_summary": ["scope", "force", "n_cara", "rd_per100_mean", "rd_per100_q05", "rd_per100_q95",
                            "nmb_per_participant_mean", "nmb_per_participant_q05", "nmb_per_participant_q95",
                            "nmb_total_mean", "nmb_total_q05", "nmb_total_q95", "prob_nmb_positive", "bcr_median",
                            "bcr_q05", "bcr_q95", "cost_per_reoffence_avoided", "cost_per_reoffence_avoided_q05",
                            "cost_per_reoffence_avoided_q95", "cost_per_reoffence_avoided_reason"],
    "costbenefit_ceac": ["scope", "force", "wtp_per_reoffence_avoided", "prob_cost_effective"],
    "costbenefit_unit_costs": ["item", "value_gbp", "source", "illustrative"],
    "planning_precision": ["scope", "force", "months_added", "cases_added", "cara_cases_added", "expected_width_90",
                           "assurance"],
    "planning_conclusive": ["scope", "force", "current_q05", "current_q95", "conclusive_now", "months_to_conclusive",
                            "assurance_at_max", "max_months"],
    "calibration_coverage": ["scenario", "method", "estimand", "scope", "level", "n_replicates", "n_estimates",
                             "coverage_50", "coverage_50_low", "coverage_50_high", "coverage_90", "coverage_90_low",
                             "coverage_90_high", "bias", "rmse", "mean_width_90", "seconds_per_replicate",
                             "cpu_seconds_per_replicate"],
    "calibration_targets": ["scenario", "estimand", "scope", "n_replicates", "coverage_90", "coverage_90_low",
                            "coverage_90_high", "coverage_in_band", "bias", "bias_low", "bias_high",
                            "bias_within_limit", "verdict", "adversarial"],
    "calibration_sbc_ranks": ["replicate", "parameter", "truth", "rank", "n_draws", "divergences", "seconds",
                              "cpu_seconds"],
    "calibration_sbc_uniformity": ["parameter", "n_replicates", "bins", "chi_square", "df", "p_value",
                                   "max_ecdf_difference"],
    "sensitivity_summary": ["analysis", "variant", "estimand", "mean", "q05", "q95", "prob_reduction", "gate_passed",
                            "note"],
    "sensitivity_tipping_point": ["criterion", "threshold", "side", "tipping_delta", "baseline_value", "grid",
                                  "max_shift_rd_mean", "note"],
}


def contract_tables(inputs) -> dict[str, str]:
    """The manifest's `tables`: absolute paths of the contract tables among a rule's named inputs."""
    return {name: str(Path(inputs[name]).resolve()) for name in CONTRACT_COLUMNS if name in inputs.keys()}


@dataclass
class ReportData:
    """The report's inputs: the manifest and the tables it names, read once and checked against the contract."""

    manifest: dict
    _tables: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = "_inputs.json") -> "ReportData":
        return cls(json.loads(Path(path).read_text()))

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            self._tables[name] = _read_checked(name, self.manifest["tables"].get(name))
        return self._tables[name]

    @property
    def threshold(self) -> int:
        return int(self.manifest["report"]["disclosure_threshold"])

    @property
    def config(self) -> dict:
        return self.manifest["config"]

    @property
    def outcome(self) -> str:
        return self.manifest["report"]["primary_outcome"]

    @property
    def force(self) -> str:
        """The force a force report is written for (its manifest names it)."""
        return self.manifest["force"]

    @cached_property
    def tiles(self) -> pd.DataFrame:
        """Tile positions of the forces on the hex map (config report.force_tiles)."""
        return load_tiles(self.manifest["force_tiles"])

    def force_name(self, force: str) -> str:
        """A force's display name from its mapping file, else its key in words."""
        info = self.manifest.get("forces", {}).get(force) or {}
        return info.get("display_name") or str(force).replace("_", " ").title()

    @cached_property
    def gates(self) -> pd.DataFrame:
        frames = [_read_checked("gate", path) for path in self.manifest.get("gates", [])]
        if not frames:
            raise FileNotFoundError("Report input 'gate': no gate.csv files were listed in the manifest.")
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def provenance(self) -> dict:
        return _read_json("provenance", self.manifest["provenance"])

    def estimand(self, estimand: str, scope: str, level: str = "") -> pd.Series:
        """One row of the estimands table; a clear error naming what the model stage must write."""
        table = self.table("estimands")
        levels = table["level"].fillna("").astype(str)
        rows = table[table["estimand"].eq(estimand) & table["scope"].eq(scope) & levels.eq(level)]
        if rows.empty:
            raise KeyError(
                f"estimands.csv has no row estimand={estimand!r}, scope={scope!r}, level={level!r} "
                f"({self.manifest['tables']['estimands']}); see docs/contracts.md 'Values the report reads'."
            )
        return rows.iloc[0]


def _read_checked(name: str, path: str | None) -> pd.DataFrame:
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(
            f"Report input '{name}' ({path or 'not listed'}) is missing: the stage that writes it has not run. "
            "See docs/contracts.md 'Result files the report reads'."
        )
    table = pd.read_csv(path, keep_default_na=True)
    missing = [c for c in CONTRACT_COLUMNS[name] if c not in table.columns]
    if missing:
        raise ValueError(f"Report input '{name}' ({path}) lacks columns {missing} required by docs/contracts.md.")
    return table


def _read_json(name: str, path: str | None) -> dict:
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"Report input '{name}' ({path or 'not listed'}) is missing.")
    return json.loads(Path(path).read_text())
