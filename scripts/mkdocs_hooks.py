"""MkDocs hooks (mkdocs.yml ``hooks:``): a navigation that follows the pages there are, and stale pages refused.

- The ``nav`` of mkdocs.yml names every page the site has or is about to have; an entry whose file is not
  there (yet) is left out instead of failing the build, and a page in a section's folder that the ``nav``
  does not name is added at the end of that section, so a new runbook appears without editing mkdocs.yml.
- The generated reference pages are compared with what the code says before the build: a stale one is a
  warning, which ``mkdocs build --strict`` turns into a failure naming the command that refreshes it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.tourniquet")


def _path_of(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and len(item) == 1:
        value = next(iter(item.values()))
        return value if isinstance(value, str) else None
    return None


def _children(item: Any) -> list[Any] | None:
    if isinstance(item, dict) and len(item) == 1:
        value = next(iter(item.values()))
        return value if isinstance(value, list) else None
    return None


def _pages(items: list[Any]) -> set[str]:
    found: set[str] = set()
    for item in items:
        path = _path_of(item)
        if path is not None:
            found.add(path)
        children = _children(item)
        if children is not None:
            found |= _pages(children)
    return found


def _present(items: list[Any], docs: Path, named: set[str]) -> list[Any]:
    """The nav without entries whose file is missing; each section completed with its folder's other pages."""
    kept: list[Any] = []
    for item in items:
        path = _path_of(item)
        if path is not None:
            if "://" in path or (docs / path).is_file():
                kept.append(item)
            continue
        children = _children(item)
        if children is None:
            kept.append(item)
            continue
        inner = _present(children, docs, named)
        folders = {str(Path(p).parent) for p in _pages(children) if "://" not in p}
        if len(folders) == 1 and (folder := folders.pop()) != ".":
            inner += sorted(str(page.relative_to(docs)) for page in (docs / folder).glob("*.md")
                            if str(page.relative_to(docs)) not in named)
        if inner:
            kept.append({next(iter(item)): inner})
    return kept


def on_config(config: Any) -> Any:
    if config.nav:
        docs = Path(config.docs_dir)
        config.nav = _present(config.nav, docs, _pages(config.nav))
    return config


def on_pre_build(config: Any) -> None:
    from tourniquet.docs_reference import REFRESH_COMMAND, stale_pages

    root = Path(config.config_file_path).parent
    for page in stale_pages(root):
        log.warning("%s is stale: it no longer says what the code does; refresh it with %s", page, REFRESH_COMMAND)
