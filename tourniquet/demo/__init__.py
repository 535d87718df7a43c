"""What ``bin/demo`` needs, and nothing the tests alone need: a throwaway ``slapd``, generated
practitioners, a generated platform access log (one region or several), and the demo run itself.

May import: ``tourniquet`` (the engine, through the CLI's run), ``nir``. Imported by ``cli.demo``,
the tests and the benchmarks (which reuse the generators and the ``slapd`` launcher).
"""

#: A package of modules.
__all__ = ["access_log", "nation", "platform", "practitioners", "run", "slapd"]
