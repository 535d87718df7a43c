"""The playbook engine, with no Prefect in it: load a playbook, run it for one incident, report, seal.

Prefect (``tourniquet.flows``) and the command line (``tourniquet.cli``) drive it through an
executor and an approver they pass in (:mod:`~tourniquet.engine.executor`,
:mod:`~tourniquet.engine.approvals`); it calls the actions (:mod:`tourniquet.actions`, the
catalogue, imported here so that every action is registered before a playbook is read).

May import: ``actions``, ``connectors`` (through the site), ``evidence``, ``national`` and the small
shared modules. Imported by ``flows``, ``cli`` and ``hygiene`` (its runner reuses the loader and
the approver), never by what it imports.
"""

import tourniquet.actions as _catalogue  # noqa: F401  (registers every action)

#: A package of modules: import what you need from them (docs/explanation/architecture.md lists what each holds).
__all__ = [
    "approvals", "chunks", "execute", "executor", "expressions", "guardrails", "inputs", "loader", "locks", "notices",
    "playbook", "recover", "regions", "regions_after", "regions_run", "reinstate", "report", "run", "sealing",
    "undo",
]
