"""The committed generated code is exactly what the codegen script produces."""

import filecmp
import os
import shutil
import subprocess
import sys
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
