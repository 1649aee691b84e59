"""Rule ingest_force: one force's raw extract -> canonical pseudonymised cases, row accounting, quarantine."""

from cara_eval.common.logsetup import fail_with_message, redirect_to_log

redirect_to_log(snakemake)

from cara_eval.ingest.force import StructuralError, ingest_force, write_result
from cara_eval.ingest.mapping import MappingError, load_mapping
from cara_eval.ingest.outcomes import load_harm_weights
from cara_eval.ingest.parsing import load_offence_types
from cara_eval.ingest.pseudonymise import PseudonymisationKeyError, resolve_key

with fail_with_message(MappingError, StructuralError, PseudonymisationKeyError):
    mapping = load_mapping(snakemake.input.mapping)
    result = ingest_force(
        mapping,
        snakemake.params.raw_dir,
        load_offence_types(snakemake.input.offence_types),
        load_harm_weights(snakemake.input.harm_weights),
        resolve_key(snakemake.params.pseudonymisation, mapping["synthetic"]),
        snakemake.params.eligibility,
        snakemake.params.followup_days,
    )
write_result(result, snakemake.output.cases, snakemake.output.accounting, snakemake.output.quarantine)
