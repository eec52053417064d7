"""The house rules of the source tree: no import circles, and no file over ~600 lines
unless it says why.

Imports are read from the source (``ast``), at any depth: an import inside a function
closes a circle as surely as one at the top of the module. ``from pkg import name`` is an
edge to ``pkg.name`` when that is a module, else to ``pkg``. Imports only for type
checkers (under ``if TYPE_CHECKING:``) are not edges: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("appchaind", "orderbook", "margin", "p2p", "config")

#: Where the file-length rule holds.
LENGTH_RULE_PACKAGES = ("appchaind", "margin", "orderbook", "p2p", "config", "spec")
MAX_LINES = 600
#: A file may be longer when one of its first lines is a comment (or docstring line)
#: starting with this, followed by the reason.
LONG_BECAUSE = "long because"
LONG_BECAUSE_WITHIN = 30
#: Files over the limit for a reason stated here rather than in the file.
#: Files allowed over the limit without saying why in their first lines (none now: each
#: long file says why at its top).
LONG_FILES_ALLOWED: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    is_package = path.name == "__init__.py"
    edges: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    edges.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    edges.add(target)
                elif base in modules:
                    edges.add(base)
    edges.discard(module)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def _says_why_it_is_long(path: Path) -> bool:
    head = path.read_text().splitlines()[:LONG_BECAUSE_WITHIN]
    return any(line.strip().lstrip("#(\"' ").lower().startswith(LONG_BECAUSE) for line in head)


def long_files() -> list[str]:
    """Files over :data:`MAX_LINES` that neither say why nor are allowed here."""
    found = []
    for package in LENGTH_RULE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES and name not in LONG_FILES_ALLOWED:
                if not _says_why_it_is_long(path):
                    found.append(f"{name}: {lines} lines")
    return found


def test_the_length_rule_reads_a_stated_reason(tmp_path: Path) -> None:
    stated = tmp_path / "stated.py"
    stated.write_text('"""A module.\n\n(long because: one state machine.)\n"""\n')
    comment = tmp_path / "comment.py"
    comment.write_text("# long because: hot compiled code\n")
    silent = tmp_path / "silent.py"
    silent.write_text('"""A module that is long."""\n' + "x = 1\n" * 40)
    assert _says_why_it_is_long(stated) and _says_why_it_is_long(comment)
    assert not _says_why_it_is_long(silent)


def test_no_file_over_600_lines_unless_it_says_why() -> None:
    found = long_files()
    assert not found, (
        f"over {MAX_LINES} lines without a '{LONG_BECAUSE}: ...' comment in the first "
        f"{LONG_BECAUSE_WITHIN} lines (split it by rule, or say why not):\n" + "\n".join(found)
    )


def _readme_layout() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1]
    return section.split("```\n", 2)[1]


def test_the_readme_layout_names_every_package_and_every_root_module() -> None:
    """README's layout block is the map a newcomer reads: every package (at any depth)
    and every module left loose in ``appchaind/`` must be on it."""
    layout = _readme_layout()
    missing = []
    for init in sorted(ROOT.glob("**/__init__.py")):
        rel = init.parent.relative_to(ROOT)
        if rel.parts[0] not in (*LENGTH_RULE_PACKAGES, "tests", "bench", "tools"):
            continue
        if len(rel.parts) == 1 or rel.parts[0] == "appchaind":
            if f"{rel.name}/" not in layout:
                missing.append(f"{rel}/")
    for module in sorted((ROOT / "appchaind").glob("*.py")):
        if module.name != "__init__.py" and module.name not in layout:
            missing.append(f"appchaind/{module.name}")
    assert not missing, f"README.md's Layout block does not name: {', '.join(missing)}"
