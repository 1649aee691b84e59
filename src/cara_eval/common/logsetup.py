"""Send a rule script's stderr and logging to its Snakemake log, so a failed job explains itself."""

import logging
import sys


def redirect_to_log(snakemake):
    """Point stderr and the root logger at ``snakemake.log[0]``; call first in every rule script."""
    log_file = open(snakemake.log[0], "w", buffering=1)
    sys.stderr = log_file
    logging.basicConfig(
        stream=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    return log_file
