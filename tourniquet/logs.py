"""Logging: structlog configured once, secrets masked before any handler sees a record.

Events go through the standard library logger ``tourniquet``:

- to stdout, one JSON object per line when stdout is not a terminal (a worker, CI, a pipe),
  readable key=value lines on a terminal;
- to the Prefect run's logs (the ``api`` handler Prefect gives its "extra" loggers,
  ``PREFECT_LOGGING_EXTRA_LOGGERS=tourniquet``; attached here too when Prefect set up its
  logging before ``tourniquet`` was imported, as in a worker's flow-run process), bound with
  incident, playbook, step and account.

Masking happens twice: the structlog processor :func:`mask_secrets` on our own events, and a
log-record factory that masks the message and traceback of *every* record (ldap3, httpx,
Prefect) when it is created — before any handler, Prefect's API handler included, sees it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import MutableMapping
from typing import Any

import structlog

from tourniquet.secrets import known_secrets, mask

__all__ = ["configure_logging", "mask_secrets", "MaskSecretsFilter", "mask_record", "LOGGER"]

LOGGER = "tourniquet"
_configured = False
_guard = threading.Lock()


def mask_secrets(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
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


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the message (arguments merged in) and the traceback text of one record, in place."""
    if not known_secrets():
        return record
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        return record
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, ()
    if record.exc_info and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = mask(text)
    elif record.exc_text:
        record.exc_text = mask(record.exc_text)
    return record


class MaskSecretsFilter(logging.Filter):
    """logging filter: the same masking, for handlers configured elsewhere (e.g. a logging.yml)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def _install_record_factory() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_tourniquet_masking", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))

    factory._tourniquet_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _attach_prefect_handlers(logger: logging.Logger) -> None:
    """Send our records to the Prefect run's logs, whatever the import order was."""
    try:
        from prefect.logging.configuration import PROCESS_LOGGING_CONFIG, setup_logging
    except ImportError:
        return
    if not PROCESS_LOGGING_CONFIG:
        setup_logging()
    for handler in logging.getLogger("prefect.extra").handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (pytest and the CLI swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _stdout_level() -> str:
    default = "WARNING" if sys.stdout.isatty() else "INFO"
    return os.environ.get("TOURNIQUET_LOG_LEVEL", default).upper()


def configure_logging(level: int = logging.INFO, *, json: bool | None = None) -> None:
    """Set up structlog and the ``tourniquet`` logger once; later calls only re-check Prefect's handlers."""
    global _configured
    logger = logging.getLogger(LOGGER)
    with _guard:
        if not _configured:
            if json is None:
                json = not sys.stdout.isatty()
            renderer: Any = (structlog.processors.JSONRenderer(sort_keys=True) if json
                             else structlog.dev.ConsoleRenderer(colors=False))
            structlog.configure(
                processors=[
                    structlog.stdlib.filter_by_level,  # a debug line below the level costs nothing more
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
            _install_record_factory()
            # Our own line on stdout (Prefect's console handler, on the root logger, writes to stderr).
            handler = _StdoutHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler.setLevel(_stdout_level())
            handler.addFilter(MaskSecretsFilter())
            handler.set_name("tourniquet-stdout")
            logger.addHandler(handler)
            _configured = True
        # Prefect drops INFO records of an extra logger unless its level is set (see the reference).
        logger.setLevel(level)
        _attach_prefect_handlers(logger)
        for existing in logger.handlers:
            if not any(isinstance(f, MaskSecretsFilter) for f in existing.filters):
                existing.addFilter(MaskSecretsFilter())
