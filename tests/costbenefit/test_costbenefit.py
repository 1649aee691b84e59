"""Cost-benefit: hand-computed NMB and BCR, a monotone acceptability curve, suppression where effects span zero."""

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from cara_eval.costbenefit import economics as costbenefit

CARA_COST, OFFENCE_COST = 500.0, 34015.0


def _draws(scope, force, rd_per100, n_cara):
    rd_per100 = np.asarray(rd_per100, dtype=float)
    return pd.DataFrame({"draw": np.arange(len(rd_per100)), "scope": scope, "force": force,
                         "rd_per100": rd_per100, "n_cara": n_cara})


@pytest.fixture
def draws():
    """Pooled clearly beneficial; one force spanning zero; one harmful; a new force (no case count)."""
    rng = np.random.default_rng(4)
    return pd.concat([
        _draws("pooled", None, rng.normal(-4, 1, 4000), 9000),
        _draws("force", "dorset", rng.normal(-2, 3, 4000), 400),
        _draws("force", "norfolk", rng.normal(3, 1, 4000), 30),
        _draws("new_force", None, rng.normal(-4, 3, 4000), None),
    ], ignore_index=True)


def test_net_benefit_and_ratio_match_a_hand_calculation():
    """Ten fewer reoffenders per 100: 0.1 x 34,015 - 500 = 2,901.50 per participant; BCR 3,401.5 / 500."""
    summary = costbenefit.summarise(_draws("pooled", None, [-10.0] * 5, 200), CARA_COST, OFFENCE_COST).iloc[0]
    assert summary.nmb_per_participant_mean == pytest.approx(2901.5)
    assert summary.nmb_total_mean == pytest.approx(2901.5 * 200)
    assert summary.bcr_median == pytest.approx(6.803)
    assert summary.prob_nmb_positive == 1.0
    assert summary.cost_per_reoffence_avoided == pytest.approx(5000.0)


def test_summary_carries_posterior_uncertainty(draws):
    summary = costbenefit.summarise(draws, CARA_COST, OFFENCE_COST).set_index(["scope", "force"])
    assert list(summary.reset_index().columns) == costbenefit.SUMMARY_COLUMNS
    pooled = summary.loc[("pooled", "")]
    avoided = -draws.loc[draws["scope"] == "pooled", "rd_per100"] / 100
    assert pooled.prob_nmb_positive == pytest.approx(np.mean(avoided * OFFENCE_COST > CARA_COST))
    assert pooled.nmb_per_participant_q05 < pooled.nmb_per_participant_mean < pooled.nmb_per_participant_q95
    assert pooled.nmb_total_mean == pytest.approx(9000 * pooled.nmb_per_participant_mean)
    assert np.isnan(summary.loc[("new_force", ""), "nmb_total_mean"])
    assert summary.loc[("force", "norfolk"), "bcr_q95"] < 0  # harmful: benefits negative
    assert [s for s, _ in summary.index] == ["pooled", "force", "force", "new_force"]


def test_cost_per_reoffence_avoided_is_suppressed_unless_the_interval_excludes_zero(draws):
    summary = costbenefit.summarise(draws, CARA_COST, OFFENCE_COST).set_index(["scope", "force"])
    pooled = summary.loc[("pooled", "")]
    rd = draws.loc[draws["scope"] == "pooled", "rd_per100"]
    assert pooled.cost_per_reoffence_avoided == pytest.approx(CARA_COST / (-rd.median() / 100))
    assert pooled.cost_per_reoffence_avoided_q05 == pytest.approx(CARA_COST / (-rd.quantile(0.05) / 100))
    assert pooled.cost_per_reoffence_avoided_q05 < pooled.cost_per_reoffence_avoided < \
        pooled.cost_per_reoffence_avoided_q95
    assert pooled.cost_per_reoffence_avoided_reason.startswith("reported")
    for key, reason in [(("force", "dorset"), "spans zero"), (("force", "norfolk"), "above zero"),
                        (("new_force", ""), "spans zero")]:
        row = summary.loc[key]
        assert np.isnan(row.cost_per_reoffence_avoided) and np.isnan(row.cost_per_reoffence_avoided_q95)
        assert reason in row.cost_per_reoffence_avoided_reason


def test_acceptability_curve_rises_with_willingness_to_pay(draws):
    wtp = np.arange(0, 60001, 250.0)
    curve = costbenefit.acceptability_curve(draws, CARA_COST, wtp)
    for (scope, force), group in curve.groupby(["scope", "force"]):
        probability = group["prob_cost_effective"].to_numpy()
        assert np.all(np.diff(probability) >= 0), (scope, force)
        assert probability[0] == 0.0  # paying nothing never covers a positive cost
        rd = draws.loc[(draws["scope"] == scope) & (draws["force"].fillna("") == force), "rd_per100"]
        assert probability[-1] <= np.mean(rd < 0)  # ceiling: the chance CARA helps at all
    pooled = curve.loc[curve["scope"] == "pooled"].set_index("wtp_per_reoffence_avoided")["prob_cost_effective"]
    assert pooled.loc[OFFENCE_COST - OFFENCE_COST % 250] > 0.95
    assert curve.loc[curve["force"] == "norfolk", "prob_cost_effective"].max() < 0.01


def test_figure_is_reproducible(draws, tmp_path):
    curve = costbenefit.acceptability_curve(draws, CARA_COST, np.arange(0, 60001, 1000.0))
    costbenefit.plot_acceptability(curve, OFFENCE_COST, tmp_path / "a.png")
    costbenefit.plot_acceptability(curve, OFFENCE_COST, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_default_unit_costs_say_they_are_illustrative_and_where_they_come_from():
    settings = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["costbenefit"]
    table = costbenefit.unit_cost_table(settings["unit_costs"]).set_index("item")
    assert table.loc["da_offence", "value_gbp"] == 34015
    assert "Home Office 2019" in table.loc["da_offence", "source"]
    assert "Karavias et al. 2023" in table.loc["cara_per_participant", "source"]
    assert table["illustrative"].all()
