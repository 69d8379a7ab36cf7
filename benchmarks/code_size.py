"""Largest source files and functions of ``src/cohabit``, measured with :mod:`ast`.

For every ``.py`` file: its line count. For every function or method (``def`` / ``async def``,
nested ones too): its length in lines (``end_lineno - lineno + 1``, decorators excluded), its
parameter count (``self``/``cls`` included, ``*args``/``**kwargs`` counted once each) and its
nesting depth (the deepest chain of ``if``/``for``/``while``/``with``/``try``/``match`` and
nested ``def``/``lambda`` blocks inside its body; a flat body is 0).

Usage::

    .venv/bin/python benchmarks/code_size.py                 # top 15 files and functions
    .venv/bin/python benchmarks/code_size.py --top 25 --root src/cohabit/predictors

Prints markdown tables (pasted into docs/structure.md), so a "before" and an "after" are
computed the same way.
"""

from __future__ import annotations

import argparse
import ast
import os
from dataclasses import dataclass
from pathlib import Path

_BLOCKS = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
    ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.match_case,
)
if hasattr(ast, "TryStar"):
    _BLOCKS = (*_BLOCKS, ast.TryStar)


@dataclass(frozen=True)
class FunctionSize:
    """One function: where it is and how big."""

    path: str
    name: str
    line: int
    lines: int
    params: int
    depth: int


def _depth(node: ast.AST) -> int:
    """Deepest block nesting below ``node`` (``node`` itself not counted)."""
    best = 0
    for child in ast.iter_child_nodes(node):
        inner = _depth(child)
        best = max(best, inner + 1 if isinstance(child, _BLOCKS) else inner)
    return best


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    return (len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
            + (a.vararg is not None) + (a.kwarg is not None))


def functions(path: Path, rel: str) -> list[FunctionSize]:
    """Every function of one file, with qualified names (``Class.method``, ``outer.inner``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[FunctionSize] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append(FunctionSize(rel, name, child.lineno,
                                          child.end_lineno - child.lineno + 1,
                                          _params(child), _depth(child)))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def measure(root: Path) -> tuple[list[tuple[str, int]], list[FunctionSize]]:
    """``(files, functions)`` under ``root``, each sorted largest first."""
    files, funcs = [], []
    for path in sorted(root.rglob("*.py")):
        rel = os.path.relpath(path)
        files.append((rel, len(path.read_text(encoding="utf-8").splitlines())))
        funcs += functions(path, rel)
    files.sort(key=lambda f: (-f[1], f[0]))
    funcs.sort(key=lambda f: (-f.lines, f.path, f.line))
    return files, funcs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("src/cohabit"))
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args(argv)
    files, funcs = measure(args.root)
    total = sum(n for _, n in files)
    print(f"{len(files)} files, {total} lines, {len(funcs)} functions; "
          f"functions over 80 lines: {sum(f.lines > 80 for f in funcs)}, "
          f"over 10 parameters: {sum(f.params > 10 for f in funcs)}, "
          f"nesting depth >= 6: {sum(f.depth >= 6 for f in funcs)}\n")
    print("| file | lines |\n|---|---:|")
    for rel, n in files[:args.top]:
        print(f"| {rel} | {n} |")
    print("\n| function | file:line | lines | params | depth |\n|---|---|---:|---:|---:|")
    for f in funcs[:args.top]:
        print(f"| `{f.name}` | {f.path}:{f.line} | {f.lines} | {f.params} | {f.depth} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
