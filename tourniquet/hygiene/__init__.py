"""Scheduled hygiene: find the accounts that will be misused next, and the ones being misused now.

A hygiene playbook (YAML, :mod:`tourniquet.hygiene.playbook`) declares checks; the runner
(:mod:`tourniquet.hygiene.runner`) sweeps the directory once, streaming, and pushes the
access-log work into the database; each check's findings cite their evidence; acting on
them goes through the guarded response playbooks only.
"""

from tourniquet.hygiene.findings import Finding, Severity
from tourniquet.hygiene.playbook import HygienePlaybook, LoadedHygiene, load_hygiene, load_hygiene_text
from tourniquet.hygiene.runner import HygieneResult, render_markdown, run_hygiene

__all__ = ["Finding", "Severity", "HygienePlaybook", "LoadedHygiene", "load_hygiene", "load_hygiene_text",
           "HygieneResult", "render_markdown", "run_hygiene"]
