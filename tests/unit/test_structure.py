"""The shape of the house: the core never imports Prefect or the flows, no import cycles, no stage reaching up
to the composition root, no module taking another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
CORE = SRC / "digest"
#: the stages and their helpers: they are handed what they need, never reach for the composition root
STAGES = ("sources", "ingest", "store", "relevance", "llm", "render", "deliver", "text", "models", "retry", "feedback")
ROOT = ("digest.providers", "digest.pipeline", "digest.usecases", "digest.cli", "digest.web")


def module_name(path: Path) -> str:
    rel = (path.relative_to(SRC) if path.is_relative_to(SRC) else path.relative_to(SRC.parent)).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file, at any depth, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    out: list[tuple[str, list[str]]] = []
    me = module_name(path)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = me.split(".")[: len(me.split(".")) - node.level + (1 if path.name == "__init__.py" else 0)]
                base = ".".join([*pkg, base] if base else pkg)
            out.append((base, [a.name for a in node.names]))
    return out


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def graph() -> dict[str, set[str]]:
    mods = {module_name(p) for p in core_files()}
    g: dict[str, set[str]] = {}
    for p in core_files():
        edges: set[str] = set()
        for mod, names in imports(p):
            for target in [mod, *(f"{mod}.{n}" for n in names)]:
                if target in mods and target != module_name(p):
                    edges.add(target)
        g[module_name(p)] = edges
    return g


def test_the_core_never_imports_prefect_or_the_flows() -> None:
    bad = [
        f"{p.relative_to(SRC)}: {mod}"
        for p in core_files()
        for mod, _ in imports(p)
        if mod.split(".")[0] in ("prefect", "flows")
    ]
    assert bad == []


def test_no_import_cycles_in_the_core() -> None:
    g = graph()
    # a package's __init__ re-exporting its own submodules is not a cycle between responsibilities
    for m in g:
        g[m] = {t for t in g[m] if not (t.startswith(m + ".") or m.startswith(t + "."))}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(g[m]):
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t):], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert cycles == []


def test_no_stage_imports_the_composition_root() -> None:
    g = graph()
    bad = [
        f"{m} → {t}"
        for m, targets in g.items()
        if len(m.split(".")) > 1 and m.split(".")[1] in STAGES
        for t in targets
        if t.startswith(ROOT)
    ]
    assert bad == []


def test_no_module_takes_another_modules_private_names() -> None:
    bad = [
        f"{module_name(p)}: {mod}.{n}"
        for p in [*core_files(), *sorted((SRC.parent / "flows").glob("*.py"))]
        for mod, names in imports(p)
        if mod.startswith(("digest", "flows"))
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert bad == []


def test_the_cli_and_the_pipeline_load_without_prefect() -> None:
    """The core's commands start without importing Prefect (1–2 s and ~230 MB): only deploy/serve need it."""
    import subprocess
    import sys

    code = "import sys, digest.cli, digest.pipeline, digest.providers, digest.web; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr
