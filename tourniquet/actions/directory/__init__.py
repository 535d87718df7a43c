"""``directory.*`` actions: resolve, snapshot, lock, unlock, force a new password, scramble the password,
remove from groups (and add back), reinstate from the snapshot.

Every change goes through ``ctx.change`` (no-op detection, dry-run, journal, read-back, undo record).
What "locked" and "must change password" mean per product lives in the connector's flavors.
Importing this package registers the actions: ``reads`` (resolve, snapshot), ``containment`` (lock,
unlock, password reset flag, groups), ``passwords`` (scramble, one-time password), ``reinstate``;
``models`` holds what they take and return.

May import: ``actions.context``, ``connectors.directory``, ``registry`` and the shared small modules.
Imported by: the catalogue (``tourniquet.actions``), tests.
"""

from __future__ import annotations

from tourniquet.actions.directory.containment import (
    add_groups,
    clear_password_reset,
    force_password_reset,
    lock,
    remove_groups,
    unlock,
)
from tourniquet.actions.directory.models import (
    SYSTEM,
    ChangeResult,
    GroupsResult,
    ReinstateResult,
    ResolveResult,
    SnapshotResult,
)
from tourniquet.actions.directory.passwords import (
    HANDED_OVER,
    SCRAMBLED,
    one_time_password,
    scramble_password,
    set_one_time_password,
)
from tourniquet.actions.directory.reads import resolve, snapshot
from tourniquet.actions.directory.reinstate import VOLATILE, reinstate

__all__ = [
    "SYSTEM", "SCRAMBLED", "HANDED_OVER", "VOLATILE", "ResolveResult", "SnapshotResult", "ChangeResult",
    "GroupsResult", "ReinstateResult", "resolve", "snapshot", "lock", "unlock", "force_password_reset",
    "clear_password_reset", "scramble_password", "set_one_time_password", "one_time_password", "remove_groups",
    "add_groups", "reinstate",
]
