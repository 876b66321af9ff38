"""The layout is the architecture: these import rules keep it so.

- ``services/core`` is a library: no gRPC, no generated stubs, no service, no gateway. A trainer
  must run the same in a worker process, a Ray task or a notebook.
- A service process meets another only over gRPC: ``services/<a>`` never imports ``services/<b>``.
- The gateway reaches the services over gRPC only; it may use the core and the shared plumbing.
- Services call each other in one direction only (CALLS, a graph without cycles): TrainingService
  calls ModelRegistry and DataService, never the reverse; ModelRegistry and DataService call nobody.
  A service calls another only through that service's generated stub, so a file that names no
  stub of a service (module, Stub class, or the service's full name) cannot call it.
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
                 "trainhouse.common", "gateway", "fastapi", "duckdb") + tuple(f"trainhouse.{s}" for s in SERVICES)
    assert _files("services/core"), "the core library is missing"
    assert _offenders("services/core", forbidden) == []


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another_service(service):
    others = tuple(f"trainhouse.{s}" for s in SERVICES if s != service)
    assert _offenders(f"services/{service}", others) == []


def test_gateway_reaches_services_only_over_grpc():
    assert _offenders("gateway", tuple(f"trainhouse.{s}" for s in SERVICES)) == []


def test_the_sdk_ships_alone():
    """services/sdk goes to clients: httpx, pydantic and the standard library, nothing of the servers."""
    imported = {name for path in _files("services/sdk") for name in _imports(path)}
    assert imported, "the SDK is missing"
    ours = {n for n in imported if n.split(".")[0] in ("services", "gateway", "trainhouse", "grpc", "google")}
    assert {n for n in ours if not n.startswith("trainhouse.sdk")} == set()
    third_party = {n.split(".")[0] for n in imported} - {"services", "__future__"}
    import sys
    assert third_party - set(sys.stdlib_module_names) == {"httpx", "pydantic"}


def test_the_rules_see_a_violation(tmp_path):
    """The checker itself can fail: an import of a forbidden module is found, at any depth."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from trainhouse.training.store import JobStore\n")
    assert "trainhouse.training.store" in _imports(bad)


# Who may call whom over gRPC. No cycle: two services never wait on each other, each can start
# after the ones it calls, and auto-training (TrainingService's) cannot be re-entered from the
# registry it registers versions with.
CALLS = {
    "training": {"registry", "data"},
    "evaluation": {"training", "registry", "data"},
    "registry": set(),
    "data": set(),
}
STUBS = {  # service -> (generated stub module, stub class, full service name)
    "training": ("training_service_pb2_grpc", "TrainingServiceStub", "trainhouse.v1.TrainingService"),
    "data": ("data_service_pb2_grpc", "DataServiceStub", "trainhouse.v1.DataService"),
    "evaluation": ("evaluation_service_pb2_grpc", "EvaluationServiceStub", "trainhouse.v1.EvaluationService"),
    "registry": ("model_registry_pb2_grpc", "ModelRegistryStub", "trainhouse.v1.ModelRegistry"),
}


def _stub_references(path: Path, service: str) -> list[str]:
    """Where a file names `service`'s client side: its stub module (imported in any form, or used
    as a name or attribute), its Stub class, or its full name in a string (a hand-made method path)."""
    module, stub, full_name = STUBS[service]
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name.rsplit(".", 1)[-1] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names] + [(node.module or "").rsplit(".", 1)[-1]]
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and full_name in node.value:
            found.append(f"{where}:{node.lineno} names {full_name}")
        found += [f"{where}:{node.lineno} names {n}" for n in names if n in (module, stub)]
    return found


def test_service_calls_have_no_cycle():
    def reaches(start: str, target: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(peer == target or (peer not in seen and reaches(peer, target, seen | {peer}))
                   for peer in CALLS[start])
    assert set(CALLS) == set(SERVICES) == set(STUBS)
    assert [s for s in SERVICES if reaches(s, s)] == []


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_calls_only_the_services_it_may(service):
    forbidden = [s for s in SERVICES if s != service and s not in CALLS[service]]
    assert [ref for path in _files(f"services/{service}") for other in forbidden
            for ref in _stub_references(path, other)] == []


def test_the_registry_never_references_training_service_stubs():
    """Auto-training is TrainingService's: the registry is called by it, never the other way round."""
    assert "training" not in CALLS["registry"]
    assert [ref for path in _files("services/registry") for ref in _stub_references(path, "training")] == []


def test_the_stub_check_sees_a_violation(tmp_path):
    for source in ("from trainhouse.v1 import training_service_pb2_grpc\n",
                   "import trainhouse.v1.training_service_pb2_grpc as t\n",
                   "def f(v1):\n    return v1.training_service_pb2_grpc.TrainingServiceStub\n",
                   "def f(ch):\n    return ch.unary_unary('/trainhouse.v1.TrainingService/StartJob')\n"):
        bad = tmp_path / "bad.py"
        bad.write_text(source)
        assert _stub_references(bad, "training"), source
    fine = tmp_path / "fine.py"
    fine.write_text("from trainhouse.v1 import model_registry_pb2_grpc, training_job_pb2\n")
    assert _stub_references(fine, "training") == []


# The gateway's surfaces: each seed's modules, and the platform's own routes. A surface reads the
# platform through gateway/resources and renders it with its own tables; it never borrows from
# another surface. common.py (error-response docs, pagination) and validation.py are shared.
SURFACES = {
    "seed 000": {"v1", "training_v1", "data_v1", "models_v1", "evaluation_v1", "adapt_v1"},
    "seeds 001/002": {"functions"},
    "seed 003": {"jsonrpc"},
    "seed 004": {"runtime"},
    "platform": {"agents", "datasets", "sweeps", "auth_routes", "webhooks", "observability", "health", "ui"},
}
SHARED_SURFACE_MODULES = {"common", "validation"}


def _surface_of(module: str) -> str | None:
    """trainhouse.gateway.surfaces.functions.jobs -> "seeds 001/002"; None for shared modules."""
    name = module.removeprefix("trainhouse.gateway.surfaces.").split(".")[0]
    if name in SHARED_SURFACE_MODULES:
        return None
    return next(s for s, names in SURFACES.items() if name in names)


def test_every_surface_module_is_listed():
    on_disk = {p.stem if p.is_file() else p.name for p in (ROOT / "gateway/surfaces").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    listed = set().union(*SURFACES.values()) | SHARED_SURFACE_MODULES
    assert on_disk == listed


def test_no_surface_imports_another_surface():
    offenders = []
    for path in _files("gateway/surfaces"):
        if path.name == "__init__.py" and path.parent.name == "surfaces":
            continue
        own = _surface_of(".".join(path.relative_to(ROOT / "gateway/surfaces").with_suffix("").parts))
        for name in _imports(path):
            if name.startswith("trainhouse.gateway.surfaces."):
                other = _surface_of(name)
                if other is not None and other != own:
                    offenders.append(f"{path.relative_to(ROOT)} ({own}) imports {name} ({other})")
    assert offenders == []


def test_only_the_app_assembles_surfaces():
    """Plumbing and resources are used by surfaces, never the other way round."""
    offenders = [o for o in _offenders("gateway", ("trainhouse.gateway.surfaces",))
                 if not o.startswith(("gateway/surfaces/", "gateway/app.py"))]
    assert offenders == []
