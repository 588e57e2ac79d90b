"""The house's floors: kdedge's packages import each other one way (no cycle between packages, counting
function-local imports too), and no module imports another that imports it back."""

import ast
from pathlib import Path

import kdedge

ROOT = Path(kdedge.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the kdedge modules it imports (top-level or inside functions; `from pkg import mod` counts mod)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else None


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph`, or None (depth-first search, colouring nodes on the current path)."""
    on_path, done = [], set()

    def visit(node):
        if node in on_path:
            return on_path[on_path.index(node):] + [node]
        if node in done:
            return None
        on_path.append(node)
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt)
            if found:
                return found
        on_path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start)
        if found:
            return found
    return None


def test_the_graph_sees_function_local_imports():
    graph = _import_graph()
    # kdedge.cli imports the stages inside its commands only: those edges must be in the graph
    assert "kdedge.augment.run" in graph["kdedge.cli"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_packages_import_each_other_one_way():
    packages: dict[str, set[str]] = {}
    for module, targets in _import_graph().items():
        source = _package(module)
        if source:
            packages.setdefault(source, set()).update(
                t for t in map(_package, targets) if t and t != source)
    assert _cycle(packages) is None, f"packages import each other in a circle: {' -> '.join(_cycle(packages))}"


def test_no_module_cycle():
    graph = _import_graph()
    assert _cycle(graph) is None, f"modules import each other in a circle: {' -> '.join(_cycle(graph))}"
