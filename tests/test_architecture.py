"""The shape of the code, as the architecture section of the README promises it:
type hints on every public function, modules of a readable size, imports at the top
unless a comment says why. (The layers are checked by import-linter and the types by
mypy, both in .ci/run.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "intake"
MAX_LINES = 420  # "under about 400"
COMMENT = re.compile(r"(^|\s)#\s*\S")  # a comment, not a "#" inside a string


def modules() -> list[Path]:
    found = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)
    assert len(found) > 50  # the package is where it should be: no check may pass on nothing
    return found


def test_every_public_function_has_type_hints():
    lacking = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if node.name.startswith("_") and not node.name.endswith("__"):  # __init__ and the like count
                continue
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            params = [a for a in arguments if a.arg not in ("self", "cls")]
            params += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            if node.returns is None or any(a.annotation is None for a in params):
                lacking.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert lacking == []


def test_no_module_is_over_about_400_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in modules()
            if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_imports_inside_functions_say_why():
    silent = []
    for path in modules():
        lines = path.read_text("utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    first = inner.lineno - 1  # a comment on the block of imports it belongs to counts
                    while first > 0 and lines[first - 1].strip().startswith(("import ", "from ")):
                        first -= 1
                    if not any(COMMENT.search(line) for line in lines[max(first - 1, 0):inner.lineno]):
                        silent.append(f"{path.relative_to(PACKAGE.parent)}:{inner.lineno}")
    assert silent == []
