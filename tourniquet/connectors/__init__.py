"""Connectors: one package per outside system, each the only code that speaks to it.

``directory`` (LDAP), ``identity`` (SSO), ``tickets``, ``audit`` (the access log); ``_http`` is the
one HTTP boundary the HTTP connectors share; ``register`` reads the national practitioner register.
Each package offers ``connect(config, *, state_dir, transport=None)`` and raises only
:mod:`tourniquet.errors` types. May import: the shared small modules (``errors``, ``secrets``,
``model``, ``outbox``, ``scope``, ``attribution`` …). Imported by: ``site``, ``config``, ``actions``,
``hygiene``, ``flows`` (never to speak a protocol themselves).
"""

__all__ = ["directory", "identity", "tickets", "audit", "register"]
