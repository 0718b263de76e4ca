"""Text made safe for the Python source the exporters write (model.py, train.py)."""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from .onnx_export import ExportError


def doc_text(text: str) -> str:
    """``text`` made safe inside a triple-quoted docstring: one line, no closing quotes."""
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace('"', '\\"')


def literal(value: Any) -> str:
    """Python source for a constructor argument (plain values only; never a repr of an
    arbitrary object). Raises ``ExportError`` for any other value."""
    if isinstance(value, float) and not np.isfinite(value):
        return f'float("{value}")'
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise ExportError(f"cannot write {type(value).__name__} {value!r} as Python source")


def clean_forward(code: str, doc: str) -> str:
    """The ``forward`` of torch.fx's generated ``code``, without its memory bookkeeping
    (``x = None`` after a value's last use) and its copies of arguments (``input_1 =
    input``), with the docstring ``doc`` (one line, made safe by the caller)."""
    tree = ast.parse(code)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    arguments = {arg.arg for arg in fn.args.args[1:]}
    renamed: dict[str, str] = {}
    body: list[ast.stmt] = []
    for stmt in fn.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) and stmt.value.value is None:
            continue
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Name) and stmt.value.id in arguments):
            renamed[stmt.targets[0].id] = stmt.value.id
            continue
        body.append(stmt)

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.Name:
            node.id = renamed.get(node.id, node.id)
            return node

    fn.body = [ast.Expr(ast.Constant(doc))] + [Rename().visit(s) for s in body]
    fn.returns = None
    text = ast.unparse(fn)
    # ast writes the docstring with single quotes; the usual style is triple double quotes
    return text.replace(f"    {doc!r}", f'    """{doc}"""', 1)


def forward_arguments(code: str) -> list[str]:
    """The argument names of the ``forward`` in torch.fx's generated ``code`` (not self)."""
    fn = next(n for n in ast.parse(code).body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    return [arg.arg for arg in fn.args.args[1:]]


def indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())
