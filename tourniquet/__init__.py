"""Tourniquet: contain misused practitioner accounts in minutes, and prove what they touched."""

import os as _os

# Our events reach a flow run's logs through tourniquet.logs' own handler; a log record sent to
# Prefect's API outside a run (anyone's, outside Tourniquet's) is dropped without a warning.
_os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

__version__ = "0.1.0"
