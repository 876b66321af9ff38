"""Build hooks that pyproject.toml cannot express: the package map and the gRPC stubs.

The source tree keeps its top-level folders (`services/`, `gateway/`), and the installed package is one
namespace: `services/` is `trainhouse`, `gateway/` is `trainhouse.gateway`, and the stubs compiled from
`protos/` are `trainhouse.v1` (generated at build time, never committed). The `.proto` files ship as
package data (`trainhouse/protos/`) so clients in other languages can compile them.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTOS = ROOT / "protos"


def compile_stubs(out: Path) -> None:
    """protoc (from grpcio-tools, a build requirement) -> out/trainhouse/v1/*_pb2(_grpc).py(i)."""
    import importlib.util

    import grpc_tools
    from grpc_tools import protoc

    # google/rpc/status.proto ships inside googleapis-common-protos (also a build requirement).
    googleapis = Path(importlib.util.find_spec("google.rpc.status_pb2").origin).parents[2]

    files = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "trainhouse" / "v1").glob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{PROTOS}", f"-I{Path(grpc_tools.__file__).parent / '_proto'}", f"-I{googleapis}",
            f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        sys.exit("protoc failed on protos/trainhouse/v1")


class BuildWithStubs(build_py):
    """build_py that also compiles the stubs and copies the protos into the package.

    In an editable install the package is the source tree itself, so the stubs go to `services/v1/`
    (git-ignored) where `trainhouse.v1` resolves."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            tmp = ROOT / "build" / "stubs"
            shutil.rmtree(tmp, ignore_errors=True)
            compile_stubs(tmp)
            shutil.rmtree(ROOT / "services" / "v1", ignore_errors=True)
            shutil.copytree(tmp / "trainhouse" / "v1", ROOT / "services" / "v1")
            return
        build_lib = Path(self.build_lib)
        compile_stubs(build_lib)
        shutil.copytree(PROTOS, build_lib / "trainhouse" / "protos", dirs_exist_ok=True)


def packages() -> list[str]:
    found = ["trainhouse"] + [f"trainhouse.{p}" for p in find_packages("services")]
    return found + ["trainhouse.gateway"] + [f"trainhouse.gateway.{p}" for p in find_packages("gateway")]


setup(
    packages=packages(),
    package_dir={"trainhouse": "services", "trainhouse.gateway": "gateway"},
    package_data={"trainhouse.gateway": ["ui/*.html", "ui/*.js", "ui/*.css"]},
    cmdclass={"build_py": BuildWithStubs},
)
