"""The Prefect glue, and only that: flows, the task executor, approvals, artifacts, events.

Everything here turns the engine's calls into Prefect's (task runs per chunk, pauses for approvals,
artifacts and events, tags and names); none of it speaks LDAP or HTTP — the engine and the
actions do the work. Deployments in ``prefect.yaml`` point at :mod:`~tourniquet.flows.respond`; :mod:`~tourniquet.flows.serve`
serves the same flows from one long-lived process (the quicker start for a small incident).

May import: ``engine``, ``hygiene``, ``site``, ``config`` and the small shared modules, and Prefect.
Imported by ``cli`` and by Prefect (deployments' entrypoints).
"""

#: A package of modules (each imports Prefect: import the one you need).
__all__ = [
    "approval", "artifacts", "events", "executor", "form", "hygiene", "local_server", "outbox", "plans", "recover",
    "regions", "reinstate", "respond", "running", "serve", "states", "story",
]
