"""Logging: structlog configured once, one readable line per event on every sink, secrets masked.

Every event goes through the standard library logger ``tourniquet`` and reaches each sink once:

- stdout: ``22:21:12.242 | INFO    | [inc-20261201-624586d0 lock dthomas] change.applied …``
  (time, level, incident, step, account, then the event), or one JSON object per line when asked
  (``TOURNIQUET_LOG_FORMAT=json``, ``tourniquet --log-format json``); ``TOURNIQUET_LOG_LEVEL``
  sets what is printed (default INFO, WARNING on a terminal, where the CLI prints its own summary);
- the Prefect run's logs (the UI), inside a flow or task run: the same line without time and
  level (the UI shows those), INFO and above whatever the printed level (DEBUG when it is DEBUG).

Prefect's console handler (on the root logger) does not print our records a second time, and
tracebacks of *expected* errors (:class:`~tourniquet.errors.TourniquetError`: an unknown account,
a refusal, a system down) are dropped from every record, Prefect's task and flow records included:
the message says what happened. Real bugs keep their traceback, and so does everything at DEBUG.

Masking happens twice: the structlog processor :func:`mask_secrets` on our own events, and a
log-record factory that masks the message and traceback of *every* record (python-ldap, httpx,
Prefect) when it is created — before any handler, Prefect's API handler included, sees it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import MutableMapping
from datetime import datetime, timezone
from typing import Any

import structlog

from tourniquet.secrets import known_secrets, mask

__all__ = [
    "configure_logging",
    "mask_secrets",
    "MaskSecretsFilter",
    "mask_record",
    "render_message",
    "ExpectedErrorFilter",
    "LOGGER",
    "LOG_FORMATS",
]

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


# -- what a line says

#: The context every line starts with, when the event has it.
CONTEXT = ("incident", "step", "account")
#: Keys that are shown elsewhere on the line (or by the sink), not repeated as key=value.
_NOT_REPEATED = {"event", "level", "timestamp", "logger", "playbook", "dry_run", "exception", *CONTEXT}
LOG_FORMATS = ("text", "json")
_LONGEST_VALUE = 300


def _show(value: Any) -> str:
    """A value as it reads best on one line: bare words bare, the rest as compact JSON."""
    if isinstance(value, str):
        text = value if value and not any(c.isspace() or c in "\"'=[]{}" for c in value) else json.dumps(
            value, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 1] + "…"


def render_message(event_dict: MutableMapping[str, Any]) -> str:
    """``[incident step account] event key=value …``: what every sink shows of one event."""
    context = [str(event_dict[key]) for key in CONTEXT if event_dict.get(key) not in (None, "")]
    if event_dict.get("account") in (None, "") and event_dict.get("item") not in (None, ""):
        context.append(str(event_dict["item"]))
    if event_dict.get("dry_run") is True:
        context.insert(1 if context else 0, "DRY-RUN")
    shown_item = event_dict.get("item") in (event_dict.get("account"), None, "") or event_dict.get("account") in (None, "")
    extras = [f"{key}={_show(value)}" for key, value in event_dict.items()
              if key not in _NOT_REPEATED and not (key == "item" and shown_item)]
    line = " ".join(part for part in (f"[{' '.join(context)}]" if context else "", str(event_dict.get("event", "")),
                                      " ".join(extras)) if part)
    if event_dict.get("exception"):
        line += "\n" + str(event_dict["exception"])
    return line


def _to_record(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Last structlog processor: the readable message for every handler, the event itself for JSON.

    The traceback, when one is kept, is already in the message (``format_exc_info``): the record
    gets none of its own (``log.exception`` would otherwise add it a second time).
    """
    return (render_message(event_dict),), {"extra": {"tourniquet_event": dict(event_dict)}, "exc_info": False}


class _TextFormatter(logging.Formatter):
    """``22:21:12.242 | INFO    | message``: the layout of Prefect's console lines, so a worker's output reads as one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(message)s", datefmt="%H:%M:%S")


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: the event's own keys (ours), or message, level and logger (anyone's)."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "tourniquet_event", None)
        if event is None:
            event = {"event": record.getMessage(), "level": record.levelname.lower(), "logger": record.name,
                     "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat()}
            if record.exc_info or record.exc_text:
                event["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(event, sort_keys=True, ensure_ascii=False, default=str)


# -- expected errors carry no traceback


def _expected(error: BaseException | None) -> bool:
    from tourniquet.errors import TourniquetError

    return isinstance(error, TourniquetError)


def _debugging() -> bool:
    return _level_setting()[0] <= logging.DEBUG


def _drop_expected_traceback(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``exc_info`` of an expected error becomes its one-line message."""
    exc_info = event_dict.get("exc_info")
    if not exc_info or _debugging():
        return event_dict
    error = exc_info if isinstance(exc_info, BaseException) else (
        exc_info[1] if isinstance(exc_info, tuple) else sys.exc_info()[1])
    if _expected(error):
        del event_dict["exc_info"]
        event_dict.setdefault("error", f"{type(error).__name__}: {error}")
    return event_dict


class ExpectedErrorFilter(logging.Filter):
    """On Prefect's task and flow loggers: no traceback for an expected error (its message stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _expected(record.exc_info[1]) and not _debugging():
            record.exc_info, record.exc_text = None, None
        return True


class _NotOurs(logging.Filter):
    """On Prefect's console handler: our records already have their own line on stdout."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == LOGGER or record.name.startswith(LOGGER + "."))


# -- settings


def _level_setting() -> tuple[int, str | None]:
    """The printed level (``TOURNIQUET_LOG_LEVEL``), and a complaint when the setting is not a level."""
    default = logging.WARNING if sys.stdout.isatty() else logging.INFO
    wanted = os.environ.get("TOURNIQUET_LOG_LEVEL", "").strip().upper()
    if not wanted:
        return default, None
    level = logging.getLevelNamesMapping().get(wanted)
    if level is None:
        return default, f"TOURNIQUET_LOG_LEVEL={wanted!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    return level, None


def _format_setting(json_lines: bool | None) -> tuple[bool, str | None]:
    """JSON lines or text: the argument, else ``TOURNIQUET_LOG_FORMAT`` (text | json), else text."""
    if json_lines is not None:
        return json_lines, None
    wanted = os.environ.get("TOURNIQUET_LOG_FORMAT", "").strip().lower()
    if wanted in ("", "text"):
        return False, None
    if wanted == "json":
        return True, None
    return False, f"TOURNIQUET_LOG_FORMAT={wanted!r} is not one of {', '.join(LOG_FORMATS)}"


# -- sinks


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (pytest, the CLI and its progress bar swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


_run_log_handler_class: Any = None


def _run_log_handler() -> logging.Handler | None:
    """A Prefect API log handler of our own: the readable message, and only inside a flow or task run."""
    global _run_log_handler_class
    if _run_log_handler_class is None:
        try:
            from prefect.context import FlowRunContext, TaskRunContext
            from prefect.logging.handlers import APILogHandler
        except ImportError:
            return None

        class RunLogHandler(APILogHandler):
            def emit(self, record: logging.LogRecord) -> None:
                # A plan outside Prefect has no run to log to (Prefect's own handler would warn each time).
                if getattr(record, "flow_run_id", None) or FlowRunContext.get() or TaskRunContext.get():
                    super().emit(record)

        _run_log_handler_class = RunLogHandler
    handler: logging.Handler = _run_log_handler_class()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.set_name("tourniquet-run-logs")
    return handler


def _wire_prefect(logger: logging.Logger) -> None:
    """Our records to the run's logs once, never twice on the console; Prefect's own tracebacks trimmed.

    Re-checked on every :func:`configure_logging` call: Prefect sets its logging up again in a
    worker's flow-run process, possibly after ``tourniquet`` was imported.
    """
    try:
        from prefect.logging.configuration import PROCESS_LOGGING_CONFIG, setup_logging
        from prefect.logging.handlers import APILogHandler, PrefectConsoleHandler
    except ImportError:
        return
    if not PROCESS_LOGGING_CONFIG:
        setup_logging()
    for handler in list(logger.handlers):  # Prefect's shared one (PREFECT_LOGGING_EXTRA_LOGGERS=tourniquet)
        if isinstance(handler, APILogHandler) and handler.get_name() != "tourniquet-run-logs":
            logger.removeHandler(handler)
    if not any(h.get_name() == "tourniquet-run-logs" for h in logger.handlers):
        run_logs = _run_log_handler()
        if run_logs is not None:
            run_logs.setLevel(min(logging.INFO, _level_setting()[0]))
            logger.addHandler(run_logs)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(isinstance(f, _NotOurs) for f in handler.filters):
            handler.addFilter(_NotOurs())
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):
        prefect_logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedErrorFilter) for f in prefect_logger.filters):
            prefect_logger.addFilter(ExpectedErrorFilter())


def configure_logging(level: int | None = None, *, json: bool | None = None) -> None:
    """Set up structlog and the ``tourniquet`` logger once; later calls re-check Prefect's handlers.

    ``level`` (or ``TOURNIQUET_LOG_LEVEL``) is what stdout prints; ``json`` (or
    ``TOURNIQUET_LOG_FORMAT``) picks JSON lines over text. Given explicitly, either one applies
    again on a later call (the CLI's ``--log-format``).
    """
    global _configured
    logger = logging.getLogger(LOGGER)
    complaints: list[str] = []
    with _guard:
        if not _configured:
            structlog.configure(
                processors=[
                    structlog.stdlib.filter_by_level,  # a debug line below the level costs nothing more
                    structlog.contextvars.merge_contextvars,
                    structlog.stdlib.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    mask_secrets,
                    _drop_expected_traceback,
                    structlog.processors.format_exc_info,
                    _to_record,
                ],
                logger_factory=structlog.stdlib.LoggerFactory(),
                wrapper_class=structlog.stdlib.BoundLogger,
                cache_logger_on_first_use=True,
            )
            _install_record_factory()
            # Our own line on stdout (Prefect's console handler, on the root logger, writes to stderr).
            handler = _StdoutHandler(sys.stdout)
            handler.addFilter(MaskSecretsFilter())
            handler.set_name("tourniquet-stdout")
            logger.addHandler(handler)
        stdout = next(h for h in logger.handlers if h.get_name() == "tourniquet-stdout")
        if not _configured or json is not None:
            as_json, complaint = _format_setting(json)
            stdout.setFormatter(_JsonFormatter() if as_json else _TextFormatter())
            complaints += [complaint] if complaint else []
        if not _configured or level is not None:
            printed, complaint = (level, None) if level is not None else _level_setting()
            stdout.setLevel(printed)
            complaints += [complaint] if complaint else []
        _configured = True
        # The logger passes INFO on to the run's logs even when less is printed (Prefect drops the
        # INFO records of a logger whose level is not set: see the Prefect reference).
        logger.setLevel(min(logging.INFO, stdout.level))
        _wire_prefect(logger)
        for existing in logger.handlers:
            if not any(isinstance(f, MaskSecretsFilter) for f in existing.filters):
                existing.addFilter(MaskSecretsFilter())
    for complaint in complaints:
        structlog.get_logger(LOGGER).warning("logging.setting_ignored", problem=complaint)
