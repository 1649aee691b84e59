"""`python -m cara_eval.synth`: write the synthetic raw extracts and their truth file."""

from cara_eval.synth.cli import run

run()
