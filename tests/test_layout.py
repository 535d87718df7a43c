"""The package's shape, as issue 18 asks it to stay: no import circle, no module over 450 lines, every package
saying what it is for and what it exports, and the layout tables of docs/explanation/architecture.md (modules,
public names) naming exactly what is in the tree."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tourniquet"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every tourniquet module ``name`` imports: at the top, under TYPE_CHECKING, inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {module for module in found if module in known and module != name}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_no_import_circle_counting_type_checking_and_function_level_imports() -> None:
    known = _modules()
    graph = {name: _imports(name, path, known) for name, path in known.items()}
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_over_450_lines() -> None:
    long = {str(path.relative_to(ROOT)): count for path in PACKAGE.rglob("*.py")
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def _packages() -> list[Path]:
    return sorted(path.parent for path in PACKAGE.rglob("__init__.py"))


def _dotted(folder: Path) -> str:
    return ".".join(folder.relative_to(ROOT).parts)


def test_every_package_says_what_it_is_for_and_exports_explicitly() -> None:
    for folder in _packages():
        module = importlib.import_module(_dotted(folder))
        assert (module.__doc__ or "").strip(), f"{folder}: no docstring"
        assert isinstance(getattr(module, "__all__", None), list), f"{folder}: no __all__"
        for name in module.__all__:
            assert hasattr(module, name) or (folder / f"{name}.py").is_file() or (folder / name).is_dir(), \
                f"{_dotted(folder)}.__all__ names {name!r}, which it does not have"


#: The contributors' page that holds the layout tables (they lived in the README before the docs site).
LAYOUT_PAGE = ROOT / "docs" / "explanation" / "architecture.md"


def _layout() -> str:
    text = LAYOUT_PAGE.read_text(encoding="utf-8")
    return text.split("<!-- section: layout -->", 1)[1].split("<!-- end section: layout -->", 1)[0]


def _consecutive(lines: list[str]) -> list[str]:
    """The table rows: lines starting with ``|`` up to the first that does not."""
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _rows(section: str, title: str) -> dict[str, set[str]]:
    """``{path or package: the names in backticks in its row}`` of the table under ``title``."""
    after = section.split(title, 1)[1].splitlines()
    start = next(n for n, line in enumerate(after) if line.startswith("|"))
    rows: dict[str, set[str]] = {}
    for line in _consecutive(after[start:])[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        key = cells[0].strip("`")
        rows[key] = set(re.findall(r"`([^`]+)`", " ".join(cells[1:])))
    return rows


def test_the_layout_table_names_every_module_and_nothing_else() -> None:
    rows = _rows(_layout(), "### Modules")
    expected: dict[str, set[str]] = {}
    for folder in _packages():
        key = str(folder.relative_to(ROOT)) + "/"
        children = {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}
        children |= {path.name + "/" for path in folder.iterdir() if (path / "__init__.py").is_file()}
        expected[key] = children
    assert set(rows) == set(expected), "packages in docs/explanation/architecture.md's table vs the tree"
    for key, names in expected.items():
        assert rows[key] == names, f"docs/explanation/architecture.md layout, row {key}: lists {sorted(rows[key])}, the tree has {sorted(names)}"


def test_the_public_names_in_the_layout_page_are_each_packages_all() -> None:
    rows = _rows(_layout(), "### Public names")
    for folder in _packages():
        dotted = _dotted(folder)
        exported = set(importlib.import_module(dotted).__all__)
        modules = {name for name in exported if (folder / f"{name}.py").is_file() or (folder / name).is_dir()}
        if exported == modules:  # a package of modules: the modules table says it
            assert dotted not in rows, f"{dotted} exports modules only: the modules table lists them"
            continue
        assert rows.get(dotted) == exported, f"docs/explanation/architecture.md public names of {dotted} vs its __all__"
