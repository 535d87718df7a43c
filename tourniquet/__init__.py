"""Tourniquet: contain misused practitioner accounts in minutes, and prove what they touched."""

import os as _os

# Prefect reads this when it sets up logging: our structlog events then reach the run's logs.
_extra = _os.environ.get("PREFECT_LOGGING_EXTRA_LOGGERS", "")
if "tourniquet" not in _extra.split(","):
    _os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = ",".join(filter(None, [_extra, "tourniquet"]))

# Our logs outside a flow run (tourniquet plan) are not meant for the API: no warning about it.
_os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

__version__ = "0.1.0"
