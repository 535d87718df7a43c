"""What every subcommand shares: the ``--site`` argument, opening a site, printing playbook errors."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tourniquet.errors import PlaybookErrors
from tourniquet.site import Site

__all__ = ["site_argument", "open_site", "print_errors", "use_local_server", "hide_temporary_server_notes",
           "SITE_HELP"]

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


def use_local_server(site: str | None) -> None:
    """Point Prefect at the site's long-lived local server when ``PREFECT_API_URL`` is not set.

    Without one, Prefect starts a temporary server for this run (15–20 s): say so, and how to avoid it.
    """
    import os

    if os.environ.get("PREFECT_API_URL"):
        return
    from tourniquet.config import load_site
    from tourniquet.flows import local_server

    url = local_server.find(load_site(site).state_dir)
    if url:
        os.environ["PREFECT_API_URL"] = url
    else:
        print("note: no Prefect server (PREFECT_API_URL unset, no `tourniquet server start`): starting a temporary "
              "one for this run, 15-20 s", file=sys.stderr)
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
