"""The layout is the architecture: these import rules keep it so.

- ``services/core`` is a library: no gRPC, no generated stubs, no service, no gateway. A trainer
  must run the same in a worker process, a Ray task or a notebook.
- A service process meets another only over gRPC: ``services/<a>`` never imports ``services/<b>``.
- The gateway reaches the services over gRPC only; it may use the core and the shared plumbing.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("training", "data", "evaluation", "registry")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in _files(folder):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)} imports {name}")
    return out


def test_core_has_no_transport_and_no_service():
    forbidden = ("grpc", "grpc_health", "grpc_reflection", "grpc_status", "google.rpc", "trainhouse",
                 "services.common", "gateway", "fastapi", "duckdb") + tuple(f"services.{s}" for s in SERVICES)
    assert _files("services/core"), "the core library is missing"
    assert _offenders("services/core", forbidden) == []


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another_service(service):
    others = tuple(f"services.{s}" for s in SERVICES if s != service)
    assert _offenders(f"services/{service}", others) == []


def test_gateway_reaches_services_only_over_grpc():
    assert _offenders("gateway", tuple(f"services.{s}" for s in SERVICES)) == []


def test_the_rules_see_a_violation(tmp_path):
    """The checker itself can fail: an import of a forbidden module is found, at any depth."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from services.training.store import JobStore\n")
    assert "services.training.store" in _imports(bad)
