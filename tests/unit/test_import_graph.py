"""No import circle anywhere in emergelab (DESIGN.md: nothing below imports what is above it).

The graph holds every `import` statement of every module, wherever it sits (inside functions, under
`if TYPE_CHECKING:`), and the modules named in a lazy `_EXPORTS` table (`emergelab.lazy`): a circle hidden
behind a lazy import is still a circle. An edge goes to the module
named; importing a submodule does not add an edge to its parent packages' `__init__` (every module would
then sit in a circle through the package's public API).
"""

import ast
import importlib
from pathlib import Path

import pytest

import emergelab

SRC = Path(emergelab.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def imports_of(name: str, path: Path) -> set[str]:
    """The emergelab modules that module `name` (file `path`) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            for c in ast.walk(node.value):  # lazy exports: {"Name": ".module"}
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value.startswith("."):
                    found.add(package + c.value if c.value.count(".") == 1 else c.value)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES and m != name}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def a_path(graph: dict[str, set[str]], comp: list[str]) -> str:
    """One circle through the component, for the message: a -> b -> ... -> a."""
    start, inside = comp[0], set(comp)
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & inside):
                if w == start:
                    chain = [v]
                    while prev[chain[-1]] is not None:
                        chain.append(prev[chain[-1]])
                    return " -> ".join([*reversed(chain), start])
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return ", ".join(comp)


def test_the_graph_sees_lazy_and_relative_imports():
    assert "emergelab.runs.store" in imports_of("emergelab.runner", MODULES["emergelab.runner"])
    assert "emergelab.runner" in imports_of("emergelab.sweeps.executors", MODULES["emergelab.sweeps.executors"])
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert a_path({"a": {"b"}, "b": {"a"}}, ["a", "b"]) == "a -> b -> a"


def test_no_import_circle_in_the_package():
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    cycles = find_cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(a_path(graph, c) for c in cycles)


def test_layers_sweeps_use_the_runner_and_reports_know_no_sweeps():
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    for name, deps in graph.items():
        if name.startswith(("emergelab.report", "emergelab.runner", "emergelab.experiments")):
            assert not {d for d in deps if d.startswith("emergelab.sweeps")}, name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)
