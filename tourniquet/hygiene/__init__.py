"""Scheduled hygiene: find the accounts that will be misused next, and the ones being misused now.

A hygiene playbook (YAML: models in :mod:`.spec`, read by :mod:`.loader`) declares checks from
the catalogue (:mod:`.checks`); the runner (:mod:`.runner`) sweeps the directory once, streaming,
and pushes the access-log work into the database; each check's findings cite their evidence;
acting on them goes through the guarded response playbooks only.

Layers inside: ``findings`` and ``spec`` ← ``checks`` ← ``loader``, ``results`` ← ``runner``; the CLI and the
Prefect flow import this namespace or the runner, nothing here imports them.
"""

from tourniquet.hygiene.findings import Finding, Severity
from tourniquet.hygiene.loader import LoadedHygiene, load_hygiene, load_hygiene_text
from tourniquet.hygiene.runner import HygieneResult, render_markdown, run_hygiene
from tourniquet.hygiene.spec import HygienePlaybook

__all__ = ["Finding", "Severity", "HygienePlaybook", "LoadedHygiene", "load_hygiene", "load_hygiene_text",
           "HygieneResult", "render_markdown", "run_hygiene"]
