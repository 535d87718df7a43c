"""Helpers for the directory tests: call one action the way the engine does, write a containment playbook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tourniquet import registry
from tourniquet.actions.context import ActionContext
from tourniquet.journal import Journal
from tourniquet.site import Site

CONTAINMENT = """\
playbook: contain-and-isolate
version: 1
title: Contain, and take the account out of its establishment groups
inputs:
  accounts:
    type: list[str]
limits:
  max_accounts: 20
steps:
  - id: resolve
    action: directory.resolve
    with: {ids: "${{ inputs.accounts }}"}
  - id: snapshot
    action: directory.snapshot
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}"}
  - id: lock
    action: directory.lock
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}"}
  - id: reset
    action: directory.force_password_reset
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}"}
  - id: groups
    action: directory.remove_groups
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}", patterns: ["cn=ch*,ou=groups,*", "cn=ehpad-*,ou=groups,*"]}
"""


def containment_playbook(folder: Path, *, scramble: bool = False) -> Path:
    text = CONTAINMENT
    if scramble:
        text += """  - id: scramble
    action: directory.scramble_password
    for_each: ${{ steps.resolve.accounts }}
    with: {account: "${{ item }}"}
"""
    path = folder / "contain-and-isolate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def call(site: Site, name: str, *, incident: str = "inc-directory-test", dry_run: bool = False,
         **arguments: Any) -> tuple[Any, ActionContext]:
    """Run one registered action with a fresh context, as the engine would."""
    spec = registry.get(name)
    assert spec is not None, name
    journal = Journal(site.incident_dir(incident) / "journal.jsonl", incident=incident)
    context = ActionContext(incident=incident, playbook="test", step=name.split(".")[1], action=name,
                            dry_run=dry_run, site=site, journal=journal, undo_action=spec.undo)
    validated = spec.validate_arguments(arguments)
    result = spec.function(context, **{n: getattr(validated, n) for n in type(validated).model_fields})
    return result, context
