"""cara-eval: one command from nine force extracts to the national CARA report.

Stages, in order: ingest (per force) -> quality -> impute (per imputation) -> model (per outcome and
imputation) -> report. Decisions live in rules/common.smk; logic lives in src/cara_eval.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/ingest.smk"
include: "rules/quality.smk"
include: "rules/impute.smk"
include: "rules/model.smk"
include: "rules/outcomes.smk"
include: "rules/crosscheck.smk"
include: "rules/costbenefit.smk"
include: "rules/sensitivity.smk"
include: "rules/planning.smk"
include: "rules/calibration.smk"
include: "rules/report.smk"
include: "rules/provenance.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
