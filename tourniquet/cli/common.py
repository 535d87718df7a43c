"""What every subcommand shares: the ``--site`` and incident arguments, opening a site, printing errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tourniquet.errors import PlaybookError, PlaybookErrors
from tourniquet.secrets import mask
from tourniquet.site import Site

__all__ = ["site_argument", "incident_argument", "incident_id", "open_site", "print_errors", "MaskedStream",
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
