"""The layout of the tests: no test module imports another test module or conftest.

Shared fixtures live in tests/conftest.py (pytest hands them to the tests);
shared helpers in the tests.support package. This keeps it so.
"""

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the tree, at any depth (functions included).

    `from x import y` yields both x and x.y (y may be a module); relative
    imports are resolved against `package`.
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def code_strings(tree: ast.AST) -> list[tuple[int, ast.AST]]:
    """String constants that parse as Python with an import in them (code for `python -c`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "import" in node.value:
            try:
                found.append((node.lineno, ast.parse(node.value)))
            except SyntaxError:
                pass
    return found


def forbidden(module: str) -> bool:
    """A test module (tests.test_x, or test_x as a top-level name) or conftest."""
    parts = module.split(".")
    if parts[0] == "tests":
        parts = parts[1:]
    return bool(parts) and (parts[0] == "conftest" or parts[0].startswith("test_"))


def violations(source: str, name: str, package: str = "tests", *, in_strings: bool = True) -> list[str]:
    """What `source` (the file `name`, in `package`) imports that it must not, also in `python -c` code strings."""
    tree = ast.parse(source, filename=name)
    found = [(line, module) for line, module in imported_modules(tree, package) if forbidden(module)]
    if in_strings:
        for line, code in code_strings(tree):
            found += [(line, f"{module} (in a code string)") for _, module in imported_modules(code, package)
                      if forbidden(module)]
    # `from tests.conftest import x` is one problem, not two (tests.conftest and tests.conftest.x).
    found = [(line, module) for line, module in found
             if not any(other != module and module.startswith(other + ".") for line_, other in found if line_ == line)]
    return [f"{name}:{line}: imports {module}" for line, module in sorted(set(found))]


def checked_files() -> list[Path]:
    """The test modules, and what must import helpers the same way: tests/support, the scripts, the benches."""
    return sorted(
        [*TESTS.glob("test_*.py"), *TESTS.glob("support/*.py"), TESTS / "fault_loop.py", *REPO.glob("bench/*.py")]
    )


def test_no_test_module_imports_another_test_module_or_conftest():
    assert TESTS.joinpath("test_layout.py") in checked_files()
    # This file's own sample sources (below) are strings with forbidden imports on purpose.
    problems = [
        problem
        for path in checked_files()
        for problem in violations(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)),
                                  in_strings=path.name != "test_layout.py")
    ]
    assert problems == [], (
        "import shared helpers from tests.support; shared fixtures go in tests/conftest.py:\n" + "\n".join(problems)
    )


def test_conftest_imports_only_from_tests_support():
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    ours = [module for _, module in imported_modules(tree, "tests") if module.split(".")[0] == "tests"]
    assert ours and all(module.startswith("tests.support.") for module in ours), ours


def test_the_old_top_level_helper_modules_are_gone():
    assert not (TESTS / "harness.py").exists() and not (TESTS / "faultproxy.py").exists()


@pytest.mark.parametrize(
    "source",
    [
        "from tests.test_gateway import healthy\n",
        "import tests.test_gateway\n",
        "from tests import test_gateway\n",
        "from tests.conftest import auth_headers\n",
        "from tests import conftest\n",
        "import conftest\n",
        "from test_gateway import write_registry\n",
        "from . import test_gateway\n",
        "from .conftest import issue_token\n",
        "def f():\n    from tests.test_control import agencies\n",
        'CODE = "from tests.test_datagen import digest; print(digest(7, 1000))"\n',
    ],
    ids=lambda source: " ".join(source.split()),
)
def test_the_check_catches(source):
    assert violations(source, "tests/test_probe.py"), source


@pytest.mark.parametrize(
    "source",
    [
        "from tests.support.gateway import write_registry\n",
        "from tests.support import harness\n",
        "import tests.support.harness\n",
        "from .support.auth import issue_token\n",
        "import pytest\nfrom services.gateway.config import GatewaySettings\n",
        'CODE = "from tests.support.datagen import digest; print(digest(7, 1000))"\n',
    ],
    ids=lambda source: " ".join(source.split()),
)
def test_the_check_lets_through(source):
    assert violations(source, "tests/test_probe.py") == [], source
