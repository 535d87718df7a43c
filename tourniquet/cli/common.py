"""What every subcommand shares: the ``--site`` and incident arguments, opening a site, printing errors."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from tourniquet.errors import PlaybookError, PlaybookErrors
from tourniquet.secrets import mask
from tourniquet.site import Site
from tourniquet.untrusted import check_incident_id

if TYPE_CHECKING:
    from tourniquet.cli.prefect_api import PrefectServer

__all__ = ["site_argument", "sites_of", "one_site", "incident_argument", "incident_id", "open_site", "print_errors", "MaskedStream",
           "use_local_server", "hide_temporary_server_notes", "say_exit",
           "SITE_HELP"]

SITE_HELP = "site configuration (default: $TOURNIQUET_SITE or ./tourniquet.yaml)"


def site_argument(parser: argparse.ArgumentParser, *, several: bool = False) -> None:
    """``--site FILE``, the same on every subcommand; ``several``: repeatable, one incident across those sites.

    With ``several`` the value is a list (None when not given); :func:`sites_of` reads either form.
    """
    if not several:
        parser.add_argument("--site", help=SITE_HELP)
        return
    parser.add_argument("--site", action="append", metavar="FILE",
                        help=SITE_HELP + "; repeat it for one incident across several sites (regions): each id "
                             "resolves in the site that holds it, or qualify it with the site's name (nor:jdupont)")
    parser.add_argument("--national-dir", metavar="DIR",
                        help="with several sites: where the national summary folder <incident>-national goes "
                             "(default: the first site's evidence_dir)")


def sites_of(args: argparse.Namespace) -> list[str]:
    """The ``--site`` values given (none: the default site), whether the option repeats or not."""
    value = getattr(args, "site", None)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def one_site(args: argparse.Namespace) -> str | None:
    """The single site of a command run on one site (None: $TOURNIQUET_SITE or ./tourniquet.yaml)."""
    sites = sites_of(args)
    return sites[0] if sites else None


def incident_id(text: str) -> str:
    """argparse type: an incident id (it names a folder under evidence_dir), refused by name otherwise."""
    try:
        return check_incident_id(text)
    except PlaybookError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def incident_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``INCIDENT`` of every command that takes one (undo, reinstate, conclude, recover, evidence)."""
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


def use_local_server(site: str | None) -> PrefectServer:
    """The Prefect server for this command: ``PREFECT_API_URL``, the site's local server, else a temporary one.

    A temporary one is started by :meth:`~tourniquet.cli.prefect_api.PrefectServer.start` (timed, under
    the progress bar), and the summary says how long it took and how to avoid it.
    """
    from tourniquet.cli.prefect_api import find_server

    return find_server(site)


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


def say_exit(code: int, headline: str, dry_run: bool) -> None:
    """For a script reading stderr: the one line that says why the code is not 0."""
    from tourniquet.exit_codes import ExitCode

    if code == ExitCode.PARTIAL:
        print(f"PARTIAL: {headline}", file=sys.stderr)
    elif code == ExitCode.NEEDS_APPROVAL:
        print(f"NEEDS APPROVAL: {headline}", file=sys.stderr)
    elif code == ExitCode.NONE:
        print(f"{'NOTHING PLANNED' if dry_run else 'NOTHING CONTAINED'}: {headline}", file=sys.stderr)
