"""The committed generated code is exactly what the codegen script produces."""

import ast
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_generated_code_is_current(tmp_path):
    shutil.copytree(REPO / "protos", tmp_path / "protos")
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    subprocess.run(
        ["bash", "scripts/gen_protos.sh"], cwd=tmp_path, env={**os.environ, "PYTHON": sys.executable}, check=True
    )

    def generated(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*_pb2*.py*")}

    committed, fresh = generated(REPO / "protos"), generated(tmp_path / "protos")
    assert committed == fresh, "generated files differ; run `make protos` and commit"
    stale = [name for name in sorted(fresh) if not filecmp.cmp(REPO / "protos" / name, tmp_path / "protos" / name, shallow=False)]
    assert not stale, f"out of date: {stale}; run `make protos` and commit"


def test_every_service_is_versioned():
    for proto in (REPO / "protos").rglob("*.proto"):
        text = proto.read_text()
        package = next(line for line in text.splitlines() if line.startswith("package "))
        assert package.rstrip(";").split(".")[-1].startswith("v"), f"{proto}: package must end in a version"


def _gencode_versions() -> dict[str, tuple[int, int, int]]:
    """The (major, minor, patch) each generated *_pb2.py checks at import."""
    versions = {}
    for module in sorted((REPO / "protos").rglob("*_pb2.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "ValidateProtobufRuntimeVersion"
            ):
                # (domain, major, minor, patch, suffix, location)
                versions[str(module.relative_to(REPO))] = tuple(ast.literal_eval(arg) for arg in node.args[1:4])
    return versions


def test_protobuf_floor_covers_gencode():
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = [m for d in dependencies if (m := re.fullmatch(r"protobuf\s*>=\s*(\d+(?:\.\d+)*)\s*(?:,.*)?", d.strip()))]
    assert len(floors) == 1, f"expected one `protobuf>=X.Y.Z` in [project].dependencies, got {dependencies}"
    floor = tuple(int(part) for part in floors[0].group(1).split("."))
    floor += (0,) * (3 - len(floor))

    gencode = _gencode_versions()
    modules = {str(p.relative_to(REPO)) for p in (REPO / "protos").rglob("*_pb2.py")}
    assert modules and set(gencode) == modules, f"no ValidateProtobufRuntimeVersion call in {sorted(modules - set(gencode))}"
    needed = max(gencode.values())
    assert floor >= needed, (
        f"pyproject.toml allows protobuf {'.'.join(map(str, floor))}, but the generated code needs "
        f">={'.'.join(map(str, needed))}: raise the floor"
    )
