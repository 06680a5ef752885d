"""The written contract: every element of protos/ carries a comment, buf lint passes, and nothing breaks the baseline."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUF = REPO / "node_modules" / ".bin" / "buf"


def buf(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    if not BUF.exists():
        message = "buf is installed by scripts/install_node_tools.sh (npm ci)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run([str(BUF), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_buf_lint_passes_with_every_element_commented():
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_the_baseline():
    result = buf("breaking", "--against", "contract/baseline.binpb")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_breaking_check_catches_a_renumbered_field(tmp_path):
    shutil.copytree(REPO / "protos", tmp_path / "protos", ignore=shutil.ignore_patterns("*.py", "*.pyi"))
    shutil.copy(REPO / "buf.yaml", tmp_path)
    proto = tmp_path / "protos" / "bank" / "v1" / "bank.proto"
    proto.write_text(proto.read_text().replace("int64 balance_fen = 4;", "int64 balance_fen = 40;"))
    result = buf("breaking", "--against", str(REPO / "contract" / "baseline.binpb"), cwd=tmp_path)
    assert result.returncode != 0 and "balance_fen" in result.stdout, result.stdout + result.stderr


def test_the_lint_catches_an_uncommented_field(tmp_path):
    shutil.copytree(REPO / "protos", tmp_path / "protos", ignore=shutil.ignore_patterns("*.py", "*.pyi"))
    shutil.copy(REPO / "buf.yaml", tmp_path)
    proto = tmp_path / "protos" / "vehicle" / "v1" / "vehicle.proto"
    proto.write_text(proto.read_text().replace("  string color = 6;\n", "  string color = 6;\n  string owner_note = 10;\n"))
    result = buf("lint", cwd=tmp_path)
    assert result.returncode != 0 and "owner_note" in result.stdout, result.stdout + result.stderr
