"""What every subcommand shares: the ``--site`` argument, opening a site, printing playbook errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tourniquet.errors import PlaybookErrors
from tourniquet.site import Site

__all__ = ["site_argument", "open_site", "print_errors", "SITE_HELP"]

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
