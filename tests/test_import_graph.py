"""Imports run one way: no cycle in the tap or in the fake, and neither imports the other.

The graph is read from the source with `ast`, every import counted: module level, inside a
function, under `if TYPE_CHECKING:` (a type-only import back is still a dependency back).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {
    "tap_intercom_export": REPO / "tap_intercom_export",
    "fake_intercom": REPO / "packages" / "fake-intercom" / "fake_intercom",
}


def modules(package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of a package."""
    root = PACKAGES[package]
    found = {}
    for path in root.rglob("*.py"):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that module `name` imports (a package's name for its __init__)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the submodule pkg.mod when there is one.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            module = target
            while module and module not in known:
                module = module.rpartition(".")[0]
            if module and module != name:
                out.add(module)
    return out


def graph(*packages: str) -> dict[str, set[str]]:
    """Module -> the modules it imports, over the given packages."""
    sources = {name: path for p in packages for name, path in modules(p).items()}
    return {name: imported(name, path, set(sources)) for name, path in sources.items()}


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or not."""
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges[node])
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (each sorted)."""
    reach = {node: reachable(edges, node) for node in edges}
    groups = {
        frozenset({node, *(m for m in reach[node] if node in reach[m])})
        for node in edges
        if node in reach[node]
    }
    return sorted(sorted(group) for group in groups)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycle(package: str) -> None:
    edges = graph(package)
    assert len(edges) > 5  # the walk found the package's modules
    found = cycles(edges)
    detail = [
        " <-> ".join(group)
        + ": "
        + "; ".join(f"{m} imports {', '.join(sorted(edges[m] & set(group)))}" for m in group)
        for group in found
    ]
    assert found == [], "import cycles:\n" + "\n".join(detail)


def test_cycle_finder_finds_a_type_checking_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_fake_and_the_tap_import_nothing_of_each_other() -> None:
    edges = graph(*PACKAGES)
    across = {
        (module, target)
        for module, targets in edges.items()
        for target in targets
        if module.split(".")[0] != target.split(".")[0]
    }
    assert across == set()
    # The walk sees cross-package imports: the tests' own import of both is one.
    assert "fake_intercom.core" in imported(
        "tests.x", Path(__file__).with_name("test_reliability.py"), set(edges)
    )
