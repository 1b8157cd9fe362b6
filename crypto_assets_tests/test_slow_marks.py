"""`make test-fast` leaves out every test that starts a real server, daemon or process.

The fast loop runs `pytest -m 'not slow'`; a test that starts uvicorn, redis-server, the Dagster
daemon, a notebook kernel or any other process must carry `@pytest.mark.slow` (or its module a
`pytestmark`), or the loop stops being fast. This reads every test module (ast) and looks at what each
test calls itself and through the fixtures of its own module it asks for.
"""

from __future__ import annotations

import ast

import pytest

from crypto_assets_tests.paths import TESTS

# Calls that start something outside the test's process (the project's helpers included).
STARTS_A_PROCESS = {"Popen", "api_process", "own_redis", "live_stack", "NotebookClient"}


def _called_names(node: ast.AST) -> set[str]:
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def _is_slow_mark(expr: ast.AST) -> bool:
    return "mark.slow" in ast.unparse(expr)


def _unmarked_process_starters(source: str) -> list[str]:
    tree = ast.parse(source)
    module_slow = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
                      and _is_slow_mark(n.value) for n in tree.body)
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.name.startswith("test"):
            continue
        if module_slow or any(_is_slow_mark(d) for d in node.decorator_list):
            continue
        reach = _called_names(node)
        for arg in node.args.args:  # fixtures of the same module the test asks for
            if arg.arg in functions:
                reach |= _called_names(functions[arg.arg])
        if reach & STARTS_A_PROCESS:
            found.append(f"{node.name} ({', '.join(sorted(reach & STARTS_A_PROCESS))})")
    return found


def test_every_test_that_starts_a_process_is_marked_slow():
    unmarked = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        found = _unmarked_process_starters(path.read_text())
        if found:
            unmarked[str(path.relative_to(TESTS))] = found
    assert not unmarked, f"mark these @pytest.mark.slow (they start a process): {unmarked}"


@pytest.mark.parametrize("source, expected", [
    ("def test_a():\n    api_process()\n", ["test_a (api_process)"]),
    ("import pytest\n@pytest.mark.slow\ndef test_a():\n    subprocess.Popen([])\n", []),
    ("import pytest\npytestmark = pytest.mark.slow\ndef test_a():\n    own_redis()\n", []),
    ("def server():\n    return live_stack()\n\ndef test_a(server):\n    pass\n", ["test_a (live_stack)"]),
    ("def test_a():\n    assert 1 + 1 == 2\n", []),
])
def test_the_scan_sees_direct_calls_fixtures_and_both_kinds_of_mark(source, expected):
    assert _unmarked_process_starters(source) == expected
