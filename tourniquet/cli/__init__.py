"""The ``tourniquet`` command line: one parser, one module per group of subcommands.

May import anything below it (engine, flows, hygiene, site). Nothing imports it but the
``tourniquet`` script.
"""

from tourniquet.cli.main import main

__all__ = ["main"]
