"""Tourniquet: contain misused practitioner accounts in minutes, and prove what they touched.

The top of the package holds the small shared modules every layer may import (``model``,
``errors``, ``journal``, ``secrets``, ``logs``, ``config``, ``site`` …); the layers below go one way:
``cli`` and ``flows`` → ``engine`` → ``actions`` → ``connectors`` → these. The layout
table of docs/explanation/architecture.md lists every module.
"""

import os as _os

# Our events reach a flow run's logs through tourniquet.logs' own handler; a log record sent to
# Prefect's API outside a run (anyone's, outside Tourniquet's) is dropped without a warning.
_os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

__version__ = "0.1.0"

__all__ = ["__version__"]
