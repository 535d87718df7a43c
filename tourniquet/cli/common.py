"""What every subcommand shares: the ``--site`` argument, opening a site, printing playbook errors."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tourniquet.errors import PlaybookErrors
from tourniquet.site import Site

__all__ = ["site_argument", "open_site", "print_errors", "hide_temporary_server_notes", "SITE_HELP"]

SITE_HELP = "site configuration (default: $TOURNIQUET_SITE or ./tourniquet.yaml)"


def site_argument(parser: argparse.ArgumentParser) -> None:
    """``--site FILE``, the same on every subcommand."""
    parser.add_argument("--site", help=SITE_HELP)


@contextmanager
def open_site(path: str | None) -> Iterator[Site]:
    """The site's runtime (logging configured), closed whatever happens."""
    from tourniquet.config import load_site
    from tourniquet.logs import configure_logging

    configure_logging()
    site = Site(load_site(path))
    try:
        yield site
    finally:
        site.close()


def print_errors(exc: PlaybookErrors) -> None:
    for error in exc.errors:
        print(str(error), file=sys.stderr)


def _not_a_note(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def hide_temporary_server_notes() -> None:
    """No "Starting/Stopping temporary server" lines around a command's own output.

    Prefect logs them on its top ``prefect`` logger when it starts a throwaway server for a
    command run without ``PREFECT_API_URL``; a filter there leaves every other Prefect line
    (flow and task runs log on child loggers) as it is.
    """
    prefect_logger = logging.getLogger("prefect")
    if _not_a_note not in prefect_logger.filters:
        prefect_logger.addFilter(_not_a_note)
