"""Checks an ONNX model passes before any converter sees it, the bound on what constant
folding may allocate, and a bounded parser for the metadata exporters write.

Each node is held to its operator's schema for the model's opset: the number of inputs
and outputs, no missing required input, attributes the operator declares, of the declared
type, required ones present; sizes, strides, dilations, groups and pads in range. A node
that fails is named with what is wrong, so no converter ever indexes past an input list
or multiplies ``None``.
"""

from __future__ import annotations

import ast
import re

import numpy as np
import onnx
from onnx import AttributeProto, defs

from .onnx_tensors import ITEM_SIZE, attribute_type_name, gigabytes
from .onnx_values import Unsupported

DEFAULT_MAX_BYTES = 2 * 1024 ** 3  # what folding (and external data) may take, per import
_INT32_MAX = 2 ** 31 - 1
_POSITIVE = ("kernel_shape", "strides", "dilations", "group", "hidden_size")
_NON_NEGATIVE = ("pads", "output_padding")


def check_opset(model) -> int:
    """The model's default-domain opset; ``ValueError`` when ONNX defines no such one."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    opset = versions[0] if versions else 1
    newest = defs.onnx_opset_version()
    if not 1 <= opset <= newest:
        raise ValueError(f"the model imports operator set {opset}; ONNX defines 1 to {newest}")
    return opset


def undecodable_name(model) -> str | None:
    """A name in the main graph that is not valid UTF-8 (protobuf then gives bytes)."""
    g = model.graph
    for what, items in (("input", g.input), ("output", g.output), ("initializer", g.initializer)):
        for i in items:
            if not isinstance(i.name, str):
                return f"an {what} name {i.name[:40]!r}"
    for index, node in enumerate(g.node):
        texts = [node.name, node.op_type, node.domain, *node.input, *node.output,
                 *(a.name for a in node.attribute)]
        if not all(isinstance(t, str) for t in texts):
            return f"node {index} ({texts[1][:40]!r})"
    return None


def malformed_nodes(graph, opset: int, label) -> list[tuple[str, str, str]]:
    """``(label, op type, what is wrong)`` for each node of ``graph`` that breaks its
    operator's schema or writes a tensor something else already writes."""
    problems = []
    written = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    for index, node in enumerate(graph.node):
        reason = node_problem(node, opset)
        twice = [o for o in node.output if o and o in written]
        if reason is None and twice:
            reason = f"writes {twice[0]!r}, which an input, initializer or earlier node already writes"
        written.update(node.output)
        if reason is not None:
            problems.append((label(node, index), node.op_type, reason))
    return problems


def _torch_split_count(node, a) -> bool:
    """torch's exporter writes opset 18's ``num_outputs`` on the Split of older opsets; it
    says nothing the outputs do not, where it equals their number."""
    return (node.op_type == "Split" and a.name == "num_outputs" and a.type == AttributeProto.INT
            and a.i == len(node.output))


def node_problem(node, opset: int) -> str | None:
    """What is wrong with ``node`` against its operator's schema, or None."""
    if node.domain not in ("", "ai.onnx"):
        return None  # refused later as an operator of another domain
    try:
        schema = defs.get_schema(node.op_type, opset, "")
    except defs.SchemaError:
        return None  # not an operator of this opset: refused later as unsupported
    n_in, n_out = len(node.input), len(node.output)
    if not schema.min_input <= n_in <= schema.max_input:
        return f"has {n_in} inputs; {node.op_type} takes {_count(schema.min_input, schema.max_input)}"
    if not schema.min_output <= n_out <= schema.max_output:
        return f"has {n_out} outputs; {node.op_type} gives {_count(schema.min_output, schema.max_output)}"
    optional = defs.OpSchema.FormalParameterOption.Optional
    for i, name in enumerate(node.input):
        formal = schema.inputs[min(i, len(schema.inputs) - 1)]
        if not name and formal.option != optional:
            return f"its input {i} ({formal.name}) is missing"
    if not any(node.output):
        return "names none of its outputs"
    seen = set()
    for a in node.attribute:
        if a.name in seen:
            return f"has the attribute {a.name!r} twice"
        seen.add(a.name)
        spec = schema.attributes.get(a.name)
        if spec is None and _torch_split_count(node, a):
            continue
        if spec is None:
            return f"has an attribute {a.name[:40]!r} that {node.op_type} does not take"
        if a.ref_attr_name:
            return f"its attribute {a.name!r} refers to a function's attribute outside a function"
        want = int(spec.type.value)
        if a.type != want:
            return (f"its attribute {a.name!r} is {attribute_type_name(a.type)}; {node.op_type} takes "
                    f"{attribute_type_name(want)}")
        problem = _range_problem(node, a)
        if problem:
            return problem
    for name, spec in schema.attributes.items():
        if spec.required and name not in seen:
            return f"lacks the required attribute {name!r}"
    return None


def _count(low: int, high: int) -> str:
    if high >= _INT32_MAX:
        return f"at least {low}"
    return str(low) if low == high else f"{low} to {high}"


def _range_problem(node, a) -> str | None:
    if a.type == AttributeProto.INT:
        values = [a.i]
    elif a.type == AttributeProto.INTS:
        values = list(a.ints)
    elif a.type in (AttributeProto.FLOAT, AttributeProto.FLOATS):
        # bounds (Clip's min / max, a Pad value) may be infinite; nothing may be NaN
        bounds = a.name in ("min", "max", "value")
        bad = [f for f in ([a.f] if a.type == AttributeProto.FLOAT else a.floats)
               if np.isnan(f) or (np.isinf(f) and not bounds)]
        return f"its attribute {a.name!r} holds {bad[0]}, not a finite number" if bad else None
    else:
        return None
    if a.name in _POSITIVE:
        low = 1
    elif a.name in _NON_NEGATIVE and node.op_type != "Pad":
        low = 0
    else:
        return None
    for v in values:
        if not low <= v <= _INT32_MAX:
            return f"its attribute {a.name!r} holds {v}; the valid range is {low} to {_INT32_MAX}"
    return None


# -- folding --------------------------------------------------------------------------------
_CONTROL_FLOW = {"If", "Loop", "Scan", "SequenceMap"}
# the result of these is never larger than their inputs: no shape needed to bound it
_NOT_GROWING = {"Identity", "Cast", "CastLike", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose",
                "Shape", "Size", "Slice", "Gather", "Concat", "Split", "NonZero", "Unique", "Neg", "Abs",
                "Sqrt", "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Floor", "Ceil", "Round", "Sign", "Not",
                "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "Softmax", "Erf"}


def folded_size(node, arrays: list[np.ndarray | None], opset: int) -> int:
    """The bytes that evaluating ``node`` on the constant ``arrays`` gives, computed from
    the shapes (and the small shape-like inputs) before anything is allocated. Raises
    ``Unsupported`` when it cannot be bounded."""
    if node.op_type in _CONTROL_FLOW:
        raise Unsupported("control flow (If, Loop, Scan) is not evaluated while importing")
    present = [a for a in arrays if a is not None]
    try:
        schema = defs.get_schema(node.op_type, opset, "")
        types, data = {}, {}
        for name, a in zip(node.input, arrays):
            if name and a is not None:
                types[name] = onnx.helper.make_tensor_type_proto(
                    onnx.helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
                if a.size <= 4096:
                    data[name] = onnx.numpy_helper.from_array(a, name)
        outputs = onnx.shape_inference.infer_node_outputs(
            schema, node, types, data, opset_imports=[onnx.helper.make_opsetid("", opset)])
    except Exception as e:  # onnx raises SchemaError, InferenceError, ValidationError, TypeError...
        raise Unsupported(f"could not be evaluated as a constant: {_first(e)}") from None
    total = 0
    for name in node.output:
        t = outputs.get(name)
        if t is None or not name:
            continue
        tt = t.tensor_type
        dims = list(tt.shape.dim) if tt.HasField("shape") else None
        if dims is None or any(not d.HasField("dim_value") for d in dims):
            if node.op_type in _NOT_GROWING:
                total += sum(int(a.nbytes) for a in present)
                continue
            raise Unsupported("its result's size cannot be known before evaluating it, so it is "
                              "not evaluated while importing")
        count = 1
        for d in dims:
            count *= max(int(d.dim_value), 0)
        total += count * ITEM_SIZE.get(tt.elem_type, 8)
    return total


def too_big(size: int, used: int, limit: int) -> str:
    return (f"evaluating it as a constant would allocate {gigabytes(size)} (with what was folded "
            f"before, {gigabytes(used + size)}), more than the import limit of {gigabytes(limit)}")


def _first(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


# -- metadata -------------------------------------------------------------------------------
_MAX_METADATA = 64 * 1024
_STRING = r"'(?:[^'\\\n]|\\.){0,4096}'|\"(?:[^\"\\\n]|\\.){0,4096}\""
_LIST = re.compile(rf"\[\s*(?:(?:{_STRING})\s*,\s*)*(?:(?:{_STRING})\s*,?\s*)?\]")
_ITEM = re.compile(_STRING)


def string_list(text: str) -> list[str] | None:
    """A Python-literal list of strings (``"['', 'conv1']"``, as torch's exporter writes
    node metadata), or None for anything else: a bounded parse (64 KB, one level, strings
    only), never ``ast.literal_eval`` over arbitrary text."""
    if not isinstance(text, str) or len(text) > _MAX_METADATA or not _LIST.fullmatch(text.strip()):
        return None
    try:
        return [ast.literal_eval(m.group(0)) for m in _ITEM.finditer(text)]
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
