"""Send a rule script's stderr and logging to its Snakemake log, so a failed job explains itself."""

import contextlib
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


@contextlib.contextmanager
def fail_with_message(*errors):
    """A documented error (e.g. a structural problem in an extract) ends the job with its message in the
    log, not a traceback: the message already names the file, row, field or key to fix."""
    try:
        yield
    except errors as error:
        logging.getLogger("cara_eval").error("%s: %s", type(error).__name__, error)
        raise SystemExit(1) from None
