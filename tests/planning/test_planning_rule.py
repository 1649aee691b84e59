"""Rule planning_precision in the complete tiny run: its tables follow the fitted model and the definition, its
figure and benchmark exist, and the report shows the section with small counts suppressed."""

import pandas as pd
import pytest
import yaml

from cara_eval.common.disclosure import find_small_counts

pytestmark = pytest.mark.slow


def test_planning_tables_start_from_the_fitted_intervals_and_follow_the_definition(tiny_run):
    config = yaml.safe_load((tiny_run / "config/config.yaml").read_text())
    settings = config["planning"]
    precision = pd.read_csv(tiny_run / "results/planning/precision.csv")
    conclusive = pd.read_csv(tiny_run / "results/planning/months_to_conclusive.csv")
    estimands = pd.read_csv(tiny_run / "results/model/any_reoffence/pooled/estimands.csv")
    assert set(precision["force"]) == {*config["forces"], "all"}
    assert sorted(precision["months_added"].unique()) == list(range(settings["max_months"] + 1))

    rd = estimands[estimands["estimand"].eq("risk_difference_per100")]
    fitted = rd[rd["scope"].eq("force")].set_index("level")[["q05", "q95"]]
    fitted.loc["all"] = rd[rd["scope"].eq("pooled")][["q05", "q95"]].iloc[0]
    now = precision[precision["months_added"].eq(0)].set_index("force")
    for force, row in fitted.iterrows():
        assert now.loc[force, "expected_width_90"] == pytest.approx(row["q95"] - row["q05"], rel=1e-6)
        assert now.loc[force, "assurance"] == float(row["q05"] > 0 or row["q95"] < 0)
    # The approximation's month-0 interval needed little rescaling to match the fitted one.
    assert precision["approximation_ratio"].between(0.7, 1.4).all()

    for row in conclusive.itertuples():
        curve = precision[precision["force"].eq(row.force) & precision["months_added"].gt(0)]
        reached = curve.loc[curve["assurance"] >= settings["assurance_target"], "months_added"]
        if row.conclusive_now:
            assert row.months_to_conclusive == 0
        elif len(reached):
            assert row.months_to_conclusive == reached.min()
        else:
            assert pd.isna(row.months_to_conclusive)

    assert (tiny_run / "results/planning/months_to_conclusive.png").read_bytes()[:4] == b"\x89PNG"
    assert (tiny_run / "benchmarks/planning_precision/all.tsv").is_file()
    assert "planning for 3 forces" in (tiny_run / "logs/planning_precision/all.log").read_text()


def test_report_shows_planning_without_small_counts(tiny_run):
    html = (tiny_run / "results/report/cara_report.html").read_text()
    assert "How much more data until each answer is conclusive" in html
    assert "Months until conclusive: 0" in html and "CARA cases a year (n)" in html
    threshold = yaml.safe_load((tiny_run / "config/config.yaml").read_text())["report"]["disclosure_threshold"]
    assert find_small_counts(html, threshold) == []
