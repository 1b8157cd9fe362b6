"""Private Dagster names stay behind `crypto_assets.dagster_internals`, and still exist there.

A Dagster upgrade that moves a private name turns exactly one test here red, naming the name,
the private module it was expected in and the project modules that use it. Everything is read
from the sources' syntax trees, not by importing `crypto_assets.dagster_internals`, whose own
import would fail as a whole on such an upgrade.
"""

from __future__ import annotations

import ast
import functools
import importlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets_tests.paths import REPO

PACKAGE = REPO / "crypto_assets"
INTERNALS = PACKAGE / "dagster_internals.py"
INTERNALS_MODULE = "crypto_assets.dagster_internals"


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _is_private_dagster(module: str) -> bool:
    return module.startswith("dagster._")


def private_dagster_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) of every import of a private Dagster module anywhere in `tree`, late imports
    inside functions and `importlib.import_module("dagster._...")` included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_private_dagster(alias.name):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _is_private_dagster(node.module):
                yield node.lineno, f"from {node.module} import ..."
            elif node.module == "dagster":
                for alias in node.names:
                    if alias.name.startswith("_"):
                        yield node.lineno, f"from dagster import {alias.name}"
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _is_private_dagster(node.args[0].value)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in {"import_module", "__import__"}):
            yield node.lineno, f"import_module({node.args[0].value!r})"


def internal_names() -> dict[str, str]:
    """Each name `dagster_internals` re-exports -> the module it imports it from."""
    names = {}
    for node in _tree(INTERNALS).body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
    return names


@functools.cache
def users() -> dict[str, list[str]]:
    """Each name imported from `dagster_internals` -> the project modules importing it."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module == INTERNALS_MODULE:
                for alias in node.names:
                    found.setdefault(alias.name, []).append(str(path.relative_to(REPO)))
    return found


NAMES = internal_names()


def test_internals_declares_what_it_exports():
    exported = next(ast.literal_eval(node.value) for node in _tree(INTERNALS).body
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__")
    assert sorted(exported) == sorted(NAMES), "dagster_internals.__all__ must list exactly the names it imports"
    public = {name: module for name, module in NAMES.items() if not _is_private_dagster(module)}
    assert not public, f"import these where they are used, not through dagster_internals: {public}"


@pytest.mark.parametrize("name", sorted(NAMES))
def test_private_name_still_where_dagster_internals_expects_it(name):
    module, used_by = NAMES[name], users().get(name, [])
    try:
        found = hasattr(importlib.import_module(module), name)
    except ImportError as error:
        found, module = False, f"{module} (which no longer imports: {error})"
    assert found, (f"Dagster {dg.__version__} has no `{name}` in {module}, the module "
                   f"crypto_assets/dagster_internals.py imports it from; it is used by "
                   f"{', '.join(used_by) or 'no module'}. Find where this Dagster version moved it "
                   f"(or its public replacement) and change that one import line.")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_private_name_has_no_public_dagster_equivalent_yet(name):
    """When Dagster starts exporting a name publicly, the project should use the public one."""
    assert not hasattr(dg, name), (f"Dagster {dg.__version__} exports `{name}` publicly: import it from "
                                   f"dagster and remove it from crypto_assets/dagster_internals.py")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_private_name_is_used(name):
    assert users().get(name), f"no module imports `{name}` from {INTERNALS_MODULE}: drop it from there"


def test_only_dagster_internals_imports_private_dagster_modules():
    offenders = [f"{path.relative_to(REPO)}:{line}: {what}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path != INTERNALS
                 for line, what in private_dagster_imports(_tree(path))]
    assert not offenders, ("import these through crypto_assets/dagster_internals.py (with why no public API "
                           "serves) instead:\n" + "\n".join(offenders))


def test_scan_finds_every_form_of_private_import():
    """The scan above would pass vacuously if it missed a form; each of these must be found."""
    source = '''
import dagster._time
from dagster._core.launcher.base import WorkerStatus
from dagster import _check
def late():
    from dagster._time import get_current_datetime
    importlib.import_module("dagster._core.test_utils")
from dagster import AssetKey
from crypto_assets.dagster_internals import CheckError
'''
    assert sorted(line for line, _ in private_dagster_imports(ast.parse(source))) == [2, 3, 4, 6, 7]
