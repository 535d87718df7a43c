"""Optional parts of the package (``pip install 'tourniquet[extra]'``), and the one line that names a missing one.

The core installs anywhere without a compiler (prefect, ldap3, httpx, pyyaml, structlog). A feature
that needs more says so in one sentence, at site load when the site file shows it will be needed,
never as an ImportError from deep inside a run:

- ``libldap``: OpenLDAP's C library through python-ldap, the faster directory transport;
- ``postgresql``: psycopg, for an access log kept in PostgreSQL;
- ``plots``: matplotlib, for the timeline picture of an incident.

May import: the standard library, ``tourniquet.errors``. Imported by: ``config``, ``connectors``, ``drafts``.
"""

from __future__ import annotations

import importlib.util

from tourniquet.errors import ConfigError

__all__ = ["MissingExtra", "available", "require", "install_hint"]


class MissingExtra(ConfigError):
    """A feature the site uses needs a package from an extra that is not installed."""


def install_hint(extra: str) -> str:
    return f"pip install 'tourniquet[{extra}]'"


def available(module: str) -> bool:
    """The module can be imported (looked up without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` (one line: the feature, the extra, the command) when ``module`` is missing."""
    if not available(module):
        raise MissingExtra(f"{feature} needs the {extra!r} extra, which is not installed: {install_hint(extra)}")
