"""Rule costbenefit_evaluate: net monetary benefit, benefit-cost ratio, CEAC and cost per reoffence avoided."""

from cara_eval.common.logsetup import redirect_to_log

redirect_to_log(snakemake)

import numpy as np
import pandas as pd

from cara_eval.costbenefit import economics as costbenefit

settings = snakemake.params.costbenefit
cara_cost = settings["unit_costs"]["cara_per_participant"]["value"]
offence_cost = settings["unit_costs"]["da_offence"]["value"]
draws = pd.read_parquet(snakemake.input.draws, columns=costbenefit.DRAW_COLUMNS)

costbenefit.summarise(draws, cara_cost, offence_cost).to_csv(snakemake.output.summary, index=False)
wtp = np.arange(0, settings["wtp_max"] + settings["wtp_step"] / 2, settings["wtp_step"])
curve = costbenefit.acceptability_curve(draws, cara_cost, wtp)
curve.to_csv(snakemake.output.ceac, index=False)
costbenefit.plot_acceptability(curve, offence_cost, snakemake.output.ceac_figure)
costbenefit.unit_cost_table(settings["unit_costs"]).to_csv(snakemake.output.unit_costs, index=False)
