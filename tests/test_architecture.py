"""The package's shape: imports flow one way down the flow in design.md, with no cycles.

Every import counts, including the lazy ones inside functions (they are how the CLI starts
fast, not a licence to point back up); only `if TYPE_CHECKING:` blocks are left out, as they
never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "mlgrade"

# The grading core: data shapes, the bank, arithmetic, evidence, settings, storage, rendering.
CORE = {"models", "errors", "config", "rubrics", "scoring", "evidence", "textfiles", "pricing", "render", "store", "store_migrations", "review", "injection_scan"}
# What each layer may import (besides itself and the standard library / third parties).
ALLOWED = {
    "core": {"core"},
    "code": {"core"},
    "graders": {"core", "code"},
    "grading": {"core", "code", "graders"},  # grading.py, followup.py, doctor.py, measured.py: one answer / one endpoint / its figure
    "batch": {"core", "code", "graders", "grading"},
    "practice": {"core", "code", "graders", "grading"},
    "evaluation": {"core", "code", "graders", "grading"},
    "face": {"core", "code", "graders", "grading", "batch", "practice", "evaluation", "face"},
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = ["mlgrade", *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] in {"cli", "__main__", "commands"}:
        return "face"
    if parts[0] in CORE:
        return "core"
    if parts[0] in {"grading", "followup", "doctor", "measured"}:
        return "grading"
    return parts[0]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path) -> set[str]:
    """Absolute names of the mlgrade modules (and third-party top-level packages) imported."""
    module = module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.add(target)
                for alias in child.names:  # `from . import metrics` imports a module
                    candidate = f"{target}.{alias.name}"
                    if _exists(candidate):
                        found.add(candidate)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _exists(module: str) -> bool:
    if not module.startswith("mlgrade"):
        return False
    rel = Path(*module.split(".")[1:])
    return (PKG / rel).with_suffix(".py").is_file() or (PKG / rel / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        mod = module_name(path)
        edges[mod] = {m for m in imports_of(path) if _exists(m) and m != mod and m != "mlgrade"}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_flow_one_way_down():
    wrong = []
    for mod, targets in graph().items():
        mine = layer(mod)
        for target in targets:
            theirs = layer(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                wrong.append(f"{mod} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_only_the_client_imports_openai():
    importers = sorted(module_name(p) for p in PKG.rglob("*.py") if any(
        m == "openai" or m.startswith("openai.") for m in imports_of(p)))
    assert importers == ["mlgrade.graders.client"]


@pytest.mark.parametrize("module, expected", [
    ("mlgrade.scoring", "core"), ("mlgrade.graders.llm", "graders"), ("mlgrade.batch.engine", "batch"),
    ("mlgrade.commands.grade_cmd", "face"), ("mlgrade.doctor", "grading"), ("mlgrade.code.sandbox", "code"),
    ("mlgrade.followup", "grading"),
])
def test_layer_names(module, expected):
    assert layer(module) == expected


def test_public_names_stay_importable_from_the_package():
    import mlgrade

    for name in mlgrade.__all__:
        assert getattr(mlgrade, name) is not None
