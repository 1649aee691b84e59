"""Calibration of the model (report/_calibration.qmd): coverage and bias over the scenario grid, the targets it
meets, simulation-based calibration ranks, and which calibration run they come from."""

import pandas as pd
from matplotlib.figure import Figure

from cara_eval.report.data import ReportData, _read_checked, _read_json
from cara_eval.report.formatting import HEADLINE, effect_text, number, percent

METHOD_NAMES = {"bayes_hierarchical": "Partial pooling", "no_pooling": "No pooling",
                "naive_before_after": "Naive before/after"}
ESTIMAND_NAMES = {HEADLINE: "Risk difference per 100", "risk_ratio": "Risk ratio", "tau": "tau"}
SCOPE_LEVEL_NAMES = {("pooled", ""): "pooled", ("force", "all"): "each force"}
VERDICTS = ["met", "not decided", "missed"]  # targets.csv `verdict`, best to worst


def scenario_verdicts(targets: pd.DataFrame) -> pd.Series:
    """Each scenario's verdict over its rows: missed if any row missed, else not decided if any is, else met."""
    rank = targets["verdict"].map(VERDICTS.index)
    return rank.groupby(targets["scenario"], sort=False).max().map(VERDICTS.__getitem__)


def _run_file(data: ReportData, key: str) -> str | None:
    return (data.config.get("calibration_run") or {}).get(key)


def calibration_coverage(data: ReportData) -> pd.DataFrame | None:
    """The last calibration run's coverage table (`snakemake calibration`), or None when none has been run."""
    path = _run_file(data, "coverage")
    return _read_checked("calibration_coverage", path).fillna({"level": ""}) if path else None


def calibration_targets(data: ReportData) -> pd.DataFrame | None:
    path = _run_file(data, "targets")
    return _read_checked("calibration_targets", path) if path else None


def sbc_ranks(data: ReportData) -> pd.DataFrame | None:
    path = _run_file(data, "sbc_ranks")
    return _read_checked("calibration_sbc_ranks", path) if path else None


def sbc_uniformity(data: ReportData) -> pd.DataFrame | None:
    path = _run_file(data, "sbc_uniformity")
    return _read_checked("calibration_sbc_uniformity", path) if path else None


def run_text(data: ReportData) -> str:
    """Date, code version and K per scenario of the run the tables come from; where it is archived, and the run
    record's note (how a summary merged from several runs was put together), if any."""
    path = _run_file(data, "run")
    if not path:
        return "The run record of this calibration is missing (date, code version and K unknown)."
    run = _read_json("calibration_run", path)
    git = run.get("git") or {}
    version = (f"commit {git['commit'][:10]}{' with uncommitted changes' if git.get('dirty') else ''}"
               if git.get("commit") else f"package version {run.get('package_version') or 'unknown'}")
    counts = run["replicates"]["scenarios"]
    if len(set(counts.values())) == 1:
        k_text = (f"K = {next(iter(counts.values()))} replicates in each of {len(counts)} scenarios" if len(counts) > 1
                  else f"K = {next(iter(counts.values()))} replicates of the {next(iter(counts))} scenario")
    else:
        k_text = "replicates per scenario: " + ", ".join(f"{s} {k}" for s, k in counts.items())
    ranks = sbc_ranks(data)  # what was run, not what the config asks for: SBC is summarised by its own rule
    sbc = 0 if ranks is None else ranks["replicate"].nunique()
    archive = _run_file(data, "archive")
    source = f", archived in `{archive}` (not rerun with this report)" if archive else ""
    note = f" {run['note']}" if run.get("note") else ""
    return (f"Calibration run of {run['run_date'][:10]} ({version}){source}; {k_text}"
            f"{f'; {sbc} simulation-based calibration replicates' if sbc else ''}.{note}")


def _cell(coverage: pd.DataFrame, scenario: str, method: str, estimand: str, scope: str, level: str):
    rows = coverage[coverage["scenario"].eq(scenario) & coverage["method"].eq(method)
                    & coverage["estimand"].eq(estimand) & coverage["scope"].eq(scope) & coverage["level"].eq(level)]
    return rows.iloc[0] if len(rows) else None


def _coverage_interval(row, level: str = "90") -> str:
    return (f"{percent(row[f'coverage_{level}'])} (95% interval {percent(row[f'coverage_{level}_low'])} to "
            f"{percent(row[f'coverage_{level}_high'])})")


def calibration_markdown(data: ReportData) -> str:
    """What calibration shows, from its tables; or how to run it."""
    settings = data.config.get("calibration") or {}
    coverage = calibration_coverage(data)
    if coverage is None:
        return (
            "No calibration run is recorded for this report. Calibration checks that the model's intervals cover the "
            "truth as often as they claim: `snakemake calibration` simulates "
            f"{settings.get('replicates', 'K')} replicate datasets for each scenario of the grid "
            "(`calibration.scenarios`) under the synthetic generator's hierarchy, fits each with the primary model "
            "and writes `results/calibration/coverage.csv`; the next report render shows it here."
        )
    header, lines = [run_text(data)], []
    targets = calibration_targets(data)
    if targets is not None:
        checked = targets[~targets["adversarial"].astype(bool) & targets["estimand"].isin([HEADLINE, "risk_ratio"])]
        verdicts = scenario_verdicts(checked)
        band = settings.get("targets", {}).get("coverage_90_band", [0.85, 0.95])
        open_, missed = verdicts.index[verdicts.eq("not decided")], verdicts.index[verdicts.eq("missed")]
        header.append(
            f"Targets (90% coverage of the pooled and per-force risk difference and risk ratio inside "
            f"{percent(band[0])} to {percent(band[1])}, pooled bias within "
            f"±{settings.get('targets', {}).get('max_pooled_bias', 0.5)} per 100): met in {int(verdicts.eq('met').sum())} "
            f"of {len(verdicts)} non-adversarial scenarios"
            + (f"; not decided at this K (outside the target, but the 95% interval of the coverage or bias reaches "
               f"into it) in {', '.join(open_)}" if len(open_) else "")
            + (f"; missed in {', '.join(missed)}" if len(missed) else "") + "."
        )
    for scenario in dict.fromkeys(coverage["scenario"]):
        pooled = _cell(coverage, scenario, "bayes_hierarchical", HEADLINE, "pooled", "")
        if pooled is None:
            continue
        sentence = (f"{scenario}: the 90% intervals held the pooled risk difference in {_coverage_interval(pooled)} "
                    f"of {int(pooled['n_replicates'])} replicates, bias {effect_text(pooled['bias'], HEADLINE)} per 100")
        naive = _cell(coverage, scenario, "naive_before_after", HEADLINE, "pooled", "")
        if naive is not None:
            sentence += f" (naive before/after {effect_text(naive['bias'], HEADLINE)})"
        sentence += _each_force_text(data, coverage[coverage["scenario"].eq(scenario)])
        if pooled.get("n_refitted", 0) > 0:
            sentence += (f"; {int(pooled['n_refitted'])} of these fits refitted with longer chains after a chain "
                         "did not mix")
        if pooled.get("n_unmixed", 0) > 0:
            sentence += (f"; {int(pooled['n_unmixed'])} still did not mix after the refit (largest R-hat above "
                         f"{settings.get('refit_max_r_hat', 'the refit threshold')}) and count as they are: "
                         "the median error beside the bias in the table shows how much of a row's bias they carry")
        step_force = (settings.get("scenarios", {}).get(scenario) or {}).get("step_force")
        stepped = _cell(coverage, scenario, "bayes_hierarchical", HEADLINE, "force", step_force or "")
        if stepped is not None:
            sentence += (f"; the step that is not CARA moved {data.force_name(step_force)}'s estimate by "
                         f"{effect_text(stepped['bias'], HEADLINE)} per 100 on average (90% intervals held its true "
                         f"effect in {percent(stepped['coverage_90'])}): a limitation of the design, not of the fit")
        lines.append(sentence + ".")
    return " ".join(header) + "\n\n" + "\n".join(f"- {line}" for line in lines)


def _each_force_text(data: ReportData, scenario_coverage: pd.DataFrame) -> str:
    """The spread of the forces' own coverage and bias in one scenario: the per-force answers are only as good as
    the worst force's intervals, which the all-forces coverage averages away."""
    forces = scenario_coverage[scenario_coverage["method"].eq("bayes_hierarchical")
                               & scenario_coverage["estimand"].eq(HEADLINE) & scenario_coverage["scope"].eq("force")
                               & ~scenario_coverage["level"].isin(["", "all"])].dropna(subset=["coverage_90"])
    if len(forces) < 2:
        return ""
    low, high = forces.loc[forces["coverage_90"].idxmin()], forces.loc[forces["coverage_90"].idxmax()]
    worst = forces.loc[forces["bias"].abs().idxmax()]
    return (f"; each force's 90% intervals held its own effect in {percent(low['coverage_90'])} "
            f"({data.force_name(low['level'])}) to {percent(high['coverage_90'])} ({data.force_name(high['level'])}) "
            f"of replicates, the largest bias of one force {effect_text(worst['bias'], HEADLINE)} per 100 "
            f"({data.force_name(worst['level'])})")


def _label(estimand: str, scope: str, level: str) -> str:
    return f"{ESTIMAND_NAMES.get(estimand, estimand)}, {SCOPE_LEVEL_NAMES.get((scope, level), level)}"


def calibration_table(data: ReportData) -> pd.DataFrame:
    """The grid: per scenario, method and estimand (pooled and over all forces), coverage with its 95% interval,
    bias (mean error), median error, RMSE, the mean width of the 90% intervals and the fits that did not mix (blank
    in summaries written before they were counted)."""
    coverage = calibration_coverage(data)
    rows = coverage[coverage["level"].isin(["", "all"])]
    interval = number(".0%")
    return pd.DataFrame(
        {
            "Scenario": rows["scenario"],
            "Method": rows["method"].map(lambda m: METHOD_NAMES.get(m, m)),
            "Estimand": [_label(e, s, lv) for e, s, lv in zip(rows["estimand"], rows["scope"], rows["level"])],
            "K": rows["n_replicates"].map(lambda n: f"{int(n)}"),
            "50% coverage": [f"{interval(c)} ({interval(lo)}-{interval(hi)})" if pd.notna(c) else "" for c, lo, hi in
                             zip(rows["coverage_50"], rows["coverage_50_low"], rows["coverage_50_high"])],
            "90% coverage": [f"{interval(c)} ({interval(lo)}-{interval(hi)})" if pd.notna(c) else "" for c, lo, hi in
                             zip(rows["coverage_90"], rows["coverage_90_low"], rows["coverage_90_high"])],
            "Bias": rows["bias"].map(number("+.2f")),
            "Median error": rows.get("median_error", pd.Series(index=rows.index, dtype=float)).map(number("+.2f")),
            "RMSE": rows["rmse"].map(number(".2f")),
            "Mean 90% width": rows["mean_width_90"].map(number(".2f")),
            "Unmixed fits": rows.get("n_unmixed", pd.Series(index=rows.index, dtype=float)).map(
                lambda n: f"{int(n)}" if pd.notna(n) else ""),
        }
    )


def calibration_figure(data: ReportData) -> Figure:
    from cara_eval.calibration.summary import coverage_figure

    band = (data.config.get("calibration") or {}).get("targets", {}).get("coverage_90_band", [0.85, 0.95])
    return coverage_figure(calibration_coverage(data), tuple(band))


def sbc_markdown(data: ReportData) -> str:
    """The rank checks' verdict per parameter, or that no simulation-based calibration was run."""
    uniformity = sbc_uniformity(data)
    if uniformity is None:
        return "No simulation-based calibration is recorded for this calibration run."
    parts = [f"{row.parameter} (chi-square {row.chi_square:.1f} on {int(row.df)} df, p = {row.p_value:.2f}; largest "
             f"ECDF gap {row.max_ecdf_difference:.2f})" for row in uniformity.itertuples()]
    return (f"Simulation-based calibration over {int(uniformity['n_replicates'].iloc[0])} replicates drawn from the "
            f"model's prior: uniformity of the ranks of {'; '.join(parts)}. A small p-value or a histogram outside the "
            "band says the posterior of that parameter is too wide (hump), too narrow (U) or shifted (slope).")


def sbc_figure(data: ReportData) -> Figure:
    from cara_eval.calibration.sbc import rank_figure

    return rank_figure(sbc_ranks(data), int(data.config["calibration"]["sbc"]["bins"]))
