"""Logging: structlog configured once, secrets masked before any handler sees a record.

Events go through the standard library logger ``tourniquet`` so that Prefect's run
logger (``PREFECT_LOGGING_EXTRA_LOGGERS=tourniquet``, set in ``tourniquet/__init__``)
shows the same events, bound with incident, playbook, step and account.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

from tourniquet.secrets import mask

__all__ = ["configure_logging", "mask_secrets", "MaskSecretsFilter"]

_configured = False


def mask_secrets(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: replace every known secret in every string value."""
    return {key: _mask_value(value) for key, value in event_dict.items()}


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(v) for v in value]
    return value


class MaskSecretsFilter(logging.Filter):
    """logging filter: the same masking for records from other libraries (ldap3, httpx, Prefect)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def configure_logging(level: int = logging.INFO, *, json: bool | None = None) -> None:
    """Set up structlog and the ``tourniquet`` logger; safe to call more than once."""
    global _configured
    renderer: Any
    if json is None:
        json = not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logger = logging.getLogger("tourniquet")
    logger.setLevel(level)
    if not _configured:
        if not logger.handlers:
            # Prefect adds its console and run-log handlers inside a flow run; outside one, only
            # warnings reach the terminal (the CLI prints its own summary) unless asked otherwise.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler.setLevel(os.environ.get("TOURNIQUET_LOG_LEVEL", "WARNING").upper())
            logger.addHandler(handler)
        for existing in logger.handlers:
            existing.addFilter(MaskSecretsFilter())
        for name in ("", "prefect", "httpx", "ldap3"):
            for existing in logging.getLogger(name).handlers:
                existing.addFilter(MaskSecretsFilter())
        _configured = True
