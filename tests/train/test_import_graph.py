"""The modules of ``galaxy_explorer.train`` import each other without cycles.

Imports are read from the source with :mod:`ast`, including the ones inside functions (the
project imports lazily, so a cycle through a function-level import is still a cycle: it only
shows up later, at run time, as a half-initialised module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import galaxy_explorer

PACKAGE = Path(galaxy_explorer.__file__).resolve().parent


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere in its source (functions included)."""
    files = {_module_name(f, root): f for f in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, f in files.items():
        is_pkg = f.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), str(f))):
            if isinstance(node, ast.Import):
                bases = [a.name for a in node.names]
                names: list[str] = []
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    anchor = anchor if is_pkg else anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                bases = [base]
                names = [a.name for a in node.names]
            else:
                continue
            for base in bases:
                # "from pkg import mod" imports the submodule pkg.mod when there is one
                subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in files]
                if subs:
                    targets.update(subs)
                else:
                    mod = base
                    while mod and mod not in files:  # "import a.b.c" → the deepest module known
                        mod = mod.rpartition(".")[0]
                    if mod:
                        targets.add(mod)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]], within: str) -> list[list[str]]:
    """Strongly connected components (size > 1) among the modules whose name starts with
    ``within``, each as a sorted list."""
    nodes = sorted(n for n in graph if n.startswith(within))
    sub = {n: {t for t in graph[n] if t.startswith(within)} for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(sub[v]):
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

    for n in nodes:
        if n not in index:
            visit(n)
    return out


def test_graph_reader_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from p.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .c import x\n")
    (pkg / "sub" / "c.py").write_text("import p.sub.a\nx = 1\n")
    (pkg / "sub" / "d.py").write_text("from p.sub.c import x\n")
    graph = import_graph(pkg)
    assert graph["p.sub.a"] == {"p.sub.b"}
    assert graph["p.sub.b"] == {"p.sub.c"}
    assert graph["p.sub.c"] == {"p.sub.a"}
    assert find_cycles(graph, "p.sub.") == [["p.sub.a", "p.sub.b", "p.sub.c"]]


def test_train_modules_have_no_import_cycles():
    graph = import_graph()
    assert "galaxy_explorer.train.synth" in graph and "galaxy_explorer.train.captions" in graph
    cycles = find_cycles(graph, "galaxy_explorer.train.")
    assert cycles == [], f"import cycles among train modules: {cycles}"


def test_train_takes_part_in_no_package_wide_cycle():
    """A cycle through core or the CLI that includes a train module counts too."""
    cycles = find_cycles(import_graph(), "galaxy_explorer")
    with_train = [c for c in cycles if any(m.startswith("galaxy_explorer.train.") for m in c)]
    assert with_train == [], f"import cycles through train modules: {with_train}"
