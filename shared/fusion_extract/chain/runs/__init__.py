"""What every step does to a run besides its own work, one module a job:

    alerting   tell people (the alerts topic) and Monitoring how a run is doing
    handoff    hand work on to the next invocation: poll, rerun and transfer messages
    endings    end a run (fail, time out, cancel) or put it off after a setback; discard its staging
    finishing  once every file landed: _manifest.json, then _SUCCESS, then LANDED

and, here, what they all need: the run a message names, and log lines that carry it.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

from fusion_extract import logging as jsonlog
from fusion_extract.chain.ledger.records import Run, Versioned
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.errors import NotFoundError

log = logging.getLogger(__name__)


def find(ledger: Ledger, run_id: str, step: str) -> Versioned[Run] | None:
    """The run a message names, or None (logged): a message may outlive the ledger it points into."""
    try:
        return ledger.load_run(run_id)
    except NotFoundError:
        log.warning(f"{step} for an unknown run ignored", extra={"run_id": run_id})
        return None


def logged(run: Run) -> AbstractContextManager[None]:
    """Every log line inside carries the run's identity."""
    return jsonlog.bind(run_id=run.run_id, extract=run.extract, job_id=run.job_id)


def concerning(run: Run) -> AbstractContextManager[None]:
    """`logged`, in an invocation about this one run: its later lines carry the run's identity too, to
    the last, which says how the step ended (the sweep, about many runs, logs each with `logged`)."""
    jsonlog.about(run_id=run.run_id, extract=run.extract, job_id=run.job_id)
    return logged(run)
