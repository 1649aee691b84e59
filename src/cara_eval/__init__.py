"""cara-eval: the logic behind the Snakemake workflow, importable so pytest can test it without Snakemake."""

__version__ = "0.1.0"
