"""The packages import one way: ui -> evaluation -> ingest -> qa_bot, no module imports in a circle, the
service layer (ui.service and what it uses) imports no web framework, and only the archive
(qa_bot/archive/) reaches Chroma and tantivy."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

# What each package may import of the project's own packages.
ALLOWED = {
    "qa_bot": {"qa_bot"},
    "ingest": {"ingest", "qa_bot"},
    "evaluation": {"evaluation", "ingest", "qa_bot"},
    "ui": {"ui", "evaluation", "ingest", "qa_bot"},
    "benchmarks": {"benchmarks", "evaluation", "ingest", "qa_bot", "ui"},
}


def project_imports(path: Path) -> set[str]:
    """The project modules a file imports (at top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in ALLOWED}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, set[str]]:
    graph = {}
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            graph[module_name(path)] = project_imports(path)
    return graph


def test_packages_import_one_way() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in modules().items()
        for target in targets
        if target.split(".")[0] not in ALLOWED[module.split(".")[0]]
    ]
    assert not wrong, wrong


def test_no_module_imports_in_a_circle() -> None:
    graph = modules()
    edges = {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}
    # A package's __init__ re-exports its modules; an edge into it counts as into them.
    for m in list(edges):
        edges[m] = {t for t in edges[m] if not (m.startswith(f"{t}.") and "." not in t)}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    circles = [m for m in edges if reaches(m, m, set())]
    assert not circles, circles


# The service layer has no web framework in it: the page, the HTTP API and MCP are adapters over it.
FRAMEWORKS = {"gradio", "gradio_client", "fastapi", "starlette", "uvicorn", "mcp", "httpx2"}
FRAMEWORK_FREE = ["ui/service.py", "ui/conversations.py", "ui/keys.py"]


def test_the_service_layer_imports_no_web_framework() -> None:
    for name in FRAMEWORK_FREE:
        found = set()
        for node in ast.walk(ast.parse((ROOT / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
        assert not found & FRAMEWORKS, f"{name} imports {sorted(found & FRAMEWORKS)}"


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of every package a file imports (at top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_archive_reaches_chroma_and_tantivy() -> None:
    wrong = [
        f"{module_name(path)} imports {sorted(third_party_imports(path) & {'chromadb', 'tantivy'})}"
        for package in ("qa_bot", "ingest", "evaluation", "ui")
        for path in sorted((ROOT / package).rglob("*.py"))
        if third_party_imports(path) & {"chromadb", "tantivy"} and not path.is_relative_to(ROOT / "qa_bot" / "archive")
    ]
    assert not wrong, wrong
    # It is not vacuous: the archive does import them.
    archive = set().union(*(third_party_imports(p) for p in (ROOT / "qa_bot" / "archive").rglob("*.py")))
    assert {"chromadb", "tantivy"} <= archive
