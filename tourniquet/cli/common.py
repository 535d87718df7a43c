"""What every subcommand shares: the ``--site`` and incident arguments, opening a site, printing errors."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tourniquet.errors import PlaybookError, PlaybookErrors
from tourniquet.secrets import mask
from tourniquet.site import Site

__all__ = ["site_argument", "incident_argument", "incident_id", "open_site", "print_errors", "MaskedStream",
           "use_local_server", "hide_temporary_server_notes",
           "SITE_HELP"]

SITE_HELP = "site configuration (default: $TOURNIQUET_SITE or ./tourniquet.yaml)"


def site_argument(parser: argparse.ArgumentParser) -> None:
    """``--site FILE``, the same on every subcommand."""
    parser.add_argument("--site", help=SITE_HELP)


def incident_id(text: str) -> str:
    """argparse type: an incident id (it names a folder under evidence_dir), refused by name otherwise."""
    from tourniquet.engine.inputs import check_incident_id

    try:
        return check_incident_id(text)
    except PlaybookError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def incident_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``INCIDENT`` of undo, reinstate, evidence verify and seal."""
    parser.add_argument("incident", type=incident_id, help="incident id (letters, digits and . _ : -)")


class MaskedStream:
    """stdout / stderr for the CLI: every line masked, and text the terminal cannot encode escaped, not fatal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        text = mask(text)
        try:
            return self._stream.write(text)
        except UnicodeEncodeError:
            encoding = getattr(self._stream, "encoding", None) or "utf-8"
            return self._stream.write(text.encode(encoding, "backslashreplace").decode(encoding))

    def write_unmasked(self, text: str) -> int:
        """The one deliberate exception: a one-time password shown to the operator, once (``recover``)."""
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


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
