"""The house's rule, checked on every module: imports point down, and no two modules import each other round.

Layers, lowest first (README, "Architecture"): the basics and the pure core; storage and the model;
the settings; who may call; the use cases; the transports (gRPC and the pages); the process. A module may import
its own layer or a lower one, never a higher one, and the two transports never import each other.
Imports inside functions count too: a circle hidden in a function is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import guard

ROOT = Path(guard.__file__).parent
# (layer, module prefixes), lowest first. guard.v1 is generated code (the .proto's messages).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("basics", ("guard.errors", "guard.validate", "guard.logs", "guard.metrics", "guard.tracing", "guard.processes",
                "guard.policy", "guard.domain", "guard.providers", "guard.v1")),
    ("storage and the model", ("guard.store", "guard.sentiment", "guard.training")),
    ("settings", ("guard.settings",)),  # the one settings object: it names the store's target
    ("access", ("guard.access",)),
    ("use cases", ("guard.usecases",)),
    ("transports", ("guard.transport", "guard.web")),
    ("process", ("guard.app", "guard.cli", "guard.supervisor", "guard.__main__", "guard")),
]
APART = [("guard.transport", "guard.web"), ("guard.web", "guard.transport")]


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = (-1, 0)  # (prefix length, layer): the longest prefix decides (guard.store before guard)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), index)
    assert best[0] > 0, f"{module} is in no layer: add it to LAYERS (and to README's architecture section)"
    return best[1]


def _parse(text: str) -> ast.Module:
    """``ast.parse``, again when CPython 3.11's AST builder trips on its own recursion counter ("AST constructor
    recursion depth mismatch", seen once in a full run: the counter is shared, so another thread building an AST
    at the same moment upsets it; fixed in later CPython releases)."""
    for _ in range(2):
        try:
            return ast.parse(text)
        except SystemError:
            continue
    return ast.parse(text)


def _imports(path: Path, module: str) -> set[str]:
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(_parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("guard")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("guard"):
                # "from guard import logs" imports the module guard.logs; "from guard.x import Name" imports guard.x
                found |= {f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names}
    return found


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (ROOT / relative).with_suffix(".py").exists() or (ROOT / relative / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    modules = {_name(p): p for p in ROOT.rglob("*.py") if "v1" not in p.relative_to(ROOT).parts[:1]}
    return {name: {i for i in _imports(path, name) if i != name} for name, path in modules.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            if _layer(target) > _layer(module):
                found.append(f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})")
            for a, b in APART:
                if (module == a or module.startswith(a + ".")) and (target == b or target.startswith(b + ".")):
                    found.append(f"{module} imports {target}: the transports stay apart")
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # A package importing its own modules (its __init__) is no circle worth the name; anything else is.
    return [c for c in found if not any(c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))]


def test_imports_only_point_down() -> None:
    assert upward_imports(_graph()) == []


def test_no_module_imports_round_to_itself() -> None:
    assert circles(_graph()) == []


def test_the_checker_sees_an_upward_import_a_crossing_and_a_circle() -> None:
    """The rules can fail: a store module importing a use case, the pages importing the gRPC server, and the
    old circle between the pages' assembly and a page (an import inside a function included)."""
    graph = {**_graph(), "guard.store.desk": {"guard.usecases.desk"}, "guard.web.toolkit": {"guard.transport.server"},
             "guard.web.desk": {"guard.web.site"}}
    assert upward_imports(graph) == [
        "guard.store.desk (storage and the model) imports guard.usecases.desk (use cases)",
        "guard.web.toolkit imports guard.transport.server: the transports stay apart"]
    assert ["guard.web.site", "guard.web.desk", "guard.web.site"] in circles(graph)
