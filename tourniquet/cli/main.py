"""``tourniquet``: validate, plan and run playbooks; undo, reinstate, verify evidence; hygiene; the demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tourniquet.cli import approve, audit, demo, evidence, hygiene, incident, incidents, outbox, playbook, server
from tourniquet.cli.common import MaskedStream, print_errors
from tourniquet.errors import PlaybookErrors, TourniquetError
from tourniquet.exit_codes import ExitCode
from tourniquet.secrets import mask

__all__ = ["main", "build_parser"]

#: Each module adds its subcommands (``register(subparsers)``), in the order ``--help`` lists them.
SUBCOMMANDS = (playbook, incident, incidents, evidence, audit, outbox, hygiene, approve, server, demo)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tourniquet", description=__doc__)
    parser.add_argument("--log-format", choices=("text", "json"),
                        help="log lines on stdout: text (default, or $TOURNIQUET_LOG_FORMAT) or one JSON object each")
    parser.add_argument("--log-level", type=str.upper, choices=LEVELS,
                        help="what is printed (default $TOURNIQUET_LOG_LEVEL, else WARNING on a terminal, INFO "
                             "otherwise); DEBUG also shows the tracebacks of expected errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def _settings(args: argparse.Namespace) -> None:
    """Through the environment, so that the runs this command starts read the same settings."""
    if args.log_format:
        os.environ["TOURNIQUET_LOG_FORMAT"] = args.log_format
    if args.log_level:
        os.environ["TOURNIQUET_LOG_LEVEL"] = args.log_level
    # Nothing phones home unless asked: not a temporary Prefect server started for one command (a
    # traceback on every machine without Internet access), not Prefect's client (a notice on terminals).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if args.log_format or args.log_level:  # logging may be set up already (main called twice in one process)
        import logging

        from tourniquet.logs import configure_logging

        configure_logging(logging.getLevelNamesMapping()[args.log_level] if args.log_level else None,
                          json=(args.log_format == "json") if args.log_format else None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; what it prints is masked, and no input, however hostile, ends in a traceback."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskedStream(streams[0]), MaskedStream(streams[1])  # type: ignore[assignment]
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _settings(args)
        return int(args.func(args))
    except PlaybookErrors as exc:
        print_errors(exc)
        return ExitCode.USAGE
    except TourniquetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("interrupted: what was done so far is in the journal; run the same command again to resume",
              file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # a bug, not an input problem: still no traceback with possibly sensitive values
        print(f"internal error: {type(exc).__name__}: {mask(str(exc))[:500]} (a bug: please report it)",
              file=sys.stderr)
        return ExitCode.INTERNAL
    finally:
        sys.stdout, sys.stderr = streams


if __name__ == "__main__":
    sys.exit(main())
