"""The house limits on bot/ and adapters/, checked on every run.

- no module over 600 lines, and the median module under 250;
- no function over 60 lines unless it is a flat table (complexity 3 or less);
- no function over complexity 20.

Complexity is counted from the syntax tree: 1 for the function, plus 1 for each
if/elif, for, while, except, match case and conditional expression, 1 for each
`if` of a comprehension, and 1 for each extra operand of `and`/`or`. A `with` is
not a branch. A function nested in another (or a method of a nested class) is a
function of its own: it is checked alone and adds nothing to its parent's
complexity. A long function is a flat table only when everything inside it,
nested functions included, is that simple: 140 lines of closures are not a table.
"""

from __future__ import annotations

import ast
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("bot", "adapters")

MAX_MODULE_LINES = 600
MEDIAN_MODULE_LINES = 250  # the median must stay below this
MAX_FUNCTION_LINES = 60
FLAT_COMPLEXITY = 3  # a longer function must be a flat table: at most this complex
MAX_COMPLEXITY = 20

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
# Nodes that start a scope of their own: not part of the enclosing function's count.
_OWN_SCOPE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_ONE_BRANCH = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.IfExp, ast.match_case)


@dataclass(frozen=True)
class Function:
    where: str  # path:line
    name: str
    lines: int
    complexity: int
    whole_complexity: int  # nested functions and classes included

    @property
    def flat(self) -> bool:
        return self.whole_complexity <= FLAT_COMPLEXITY

    def __str__(self) -> str:
        return f"{self.where} {self.name}: {self.lines} lines, complexity {self.complexity}"


def _branches(node: ast.AST) -> int:
    if isinstance(node, _ONE_BRANCH):
        return 1
    if isinstance(node, ast.BoolOp):
        return len(node.values) - 1
    if isinstance(node, ast.comprehension):
        return len(node.ifs)
    return 0


def complexity(function: FunctionNode, *, nested: bool = False) -> int:
    """Cyclomatic complexity of one function, its nested functions and classes left out
    (or, with `nested`, added in)."""
    total = 1
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        if isinstance(node, _OWN_SCOPE) and not nested:
            continue
        total += _branches(node)
        stack.extend(ast.iter_child_nodes(node))
    return total


def functions_of(tree: ast.AST, path: str) -> Iterator[Function]:
    """Every function and method in `tree`, nested ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            yield Function(f"{path}:{node.lineno}", node.name, lines, complexity(node),
                           complexity(node, nested=True))


def _modules() -> list[Path]:
    return sorted(p for folder in CHECKED for p in (ROOT / folder).rglob("*.py"))


def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _functions() -> list[Function]:
    return [f for p in _modules()
            for f in functions_of(ast.parse(_source(p)), str(p.relative_to(ROOT)))]


def _report(offenders: list[str]) -> str:
    return f"{len(offenders)} over the limit:\n  " + "\n  ".join(offenders)


# ---------------------------------------------------------------- the limits


def test_no_module_is_over_600_lines() -> None:
    offenders = [f"{p.relative_to(ROOT)}: {n} lines" for p in _modules()
                 if (n := len(_source(p).splitlines())) > MAX_MODULE_LINES]
    assert not offenders, _report(offenders)


def test_median_module_is_under_250_lines() -> None:
    sizes = [len(_source(p).splitlines()) for p in _modules()]
    median = statistics.median(sizes)
    assert median < MEDIAN_MODULE_LINES, f"median module is {median} lines over {len(sizes)} modules"


def test_no_long_function_unless_it_is_a_flat_table() -> None:
    offenders = [str(f) for f in _functions()
                 if f.lines > MAX_FUNCTION_LINES and not f.flat]
    assert not offenders, _report(offenders)


def test_no_function_is_over_complexity_20() -> None:
    offenders = [str(f) for f in _functions() if f.complexity > MAX_COMPLEXITY]
    assert not offenders, _report(offenders)


# ---------------------------------------------------------------- the counter itself


def _only_function(source: str) -> FunctionNode:
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    return node


@pytest.mark.parametrize(("source", "expected"), [
    ("def f():\n    return 1\n", 1),
    ("def f(a):\n    if a:\n        return 1\n    elif a > 1:\n        return 2\n    else:\n        return 3\n", 3),
    ("async def f(a):\n    async for x in a:\n        while x:\n            pass\n", 3),
    ("def f(a):\n    for x in a:\n        pass\n    else:\n        pass\n", 2),
    ("def f(a):\n    try:\n        pass\n    except ValueError:\n        pass\n    except Exception:\n        pass\n"
     "    finally:\n        pass\n", 3),
    ("def f(a, b, c):\n    return a and b or c\n", 3),
    ("def f(a, b, c):\n    return a and b and c\n", 3),
    ("def f(a):\n    return 1 if a else 2\n", 2),
    ("def f(a):\n    return [x for x in a if x if x > 1]\n", 3),
    ("def f(a):\n    return {x: y for x in a for y in a}\n", 1),
    ("def f(a):\n    with a:\n        async_ = 1\n    return async_\n", 1),
    ("def f(a):\n    match a:\n        case 1:\n            pass\n        case _:\n            pass\n", 3),
    ("def f(a):\n    assert a\n    return lambda: 1 if a else 2\n", 2),
])
def test_complexity_counts_each_branch(source: str, expected: int) -> None:
    assert complexity(_only_function(source)) == expected


def test_nested_functions_are_counted_apart_from_their_parent() -> None:
    source = (
        "def outer(a):\n"
        "    if a:\n"
        "        pass\n"
        "    def inner(b):\n"
        "        if b:\n"
        "            return 1\n"
        "        return 2 if b else 3\n"
        "    class Local:\n"
        "        def method(self, c):\n"
        "            return c or a\n"
        "    return inner\n"
    )
    found = {f.name: (f.lines, f.complexity, f.whole_complexity)
             for f in functions_of(ast.parse(source), "x.py")}
    assert found == {"outer": (11, 2, 5), "inner": (4, 3, 3), "method": (2, 2, 2)}
