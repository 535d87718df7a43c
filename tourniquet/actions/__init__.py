"""The action catalogue: every playbook action, one module per connector namespace.

Importing this package registers them all (each module's ``@action`` decorators fill
:mod:`tourniquet.registry`), so the catalogue is this list of imports and nothing else: no
module names in strings, no discovery. ``tourniquet.engine`` imports it; the engine, the schema
and ``tourniquet actions`` then read the registry.

May import: ``connectors``, ``registry``, ``site`` and the small shared modules; never
``engine``, ``flows`` or ``cli``.
"""

from tourniquet.actions import audit, directory, flow, identity, notify, tickets

__all__ = ["audit", "directory", "flow", "identity", "notify", "tickets"]
