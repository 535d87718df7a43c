"""The catalogue of hygiene checks: every check a hygiene playbook may name, by name.

| name | kind | module |
|---|---|---|
| ``not_in_register``, ``dormant``, ``password_age``, ``unprotected`` | directory (one sweep) | :mod:`.directory` |
| ``unusual_volume``, ``off_hours``, ``new_source_ip``, ``slow_scraping`` | access log | :mod:`.access` |
| ``night_network``, ``behaviour_change`` | access log, misuse already under way | :mod:`.ongoing` |

Listed here by hand, from the check classes: nothing registers itself at import time, and the
modules import only :mod:`.base` and :mod:`.activity`, never this one. The loader validates a
playbook against :data:`CHECKS`; the runner instantiates ``CHECKS[name].factory``.

May import: ``hygiene.findings``, ``hygiene.spec``, ``connectors.audit`` (its SQL layer), ``changepoint``, ``register`` and the small shared
modules. Imported by ``hygiene.loader`` and ``hygiene.runner``.
"""

from __future__ import annotations

from tourniquet.hygiene.checks.access import NewSourceIp, OffHours, SlowScraping, UnusualVolume
from tourniquet.hygiene.checks.base import AccessCheck, Check, CheckDef, DirectoryCheck, HygieneContext
from tourniquet.hygiene.checks.directory import Dormant, NotInRegister, PasswordAge, Unprotected
from tourniquet.hygiene.checks.ongoing import BehaviourChange, NightNetwork

__all__ = ["CHECKS", "CheckDef", "Check", "DirectoryCheck", "AccessCheck", "HygieneContext"]

CHECKS: dict[str, CheckDef] = {
    definition.name: definition
    for definition in map(CheckDef.of, (
        NotInRegister, Dormant, PasswordAge, Unprotected,
        UnusualVolume, OffHours, NewSourceIp, SlowScraping,
        NightNetwork, BehaviourChange,
    ))
}
