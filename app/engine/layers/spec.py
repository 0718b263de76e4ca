"""What one layer type is: a declaration read by every part of NetCanvas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..params import Param

Shape = tuple[int, ...]
Params = dict[str, Any]


# The 32 types of format version 1 and the parameters each had then (PROJECT_FORMAT.md's
# "Version 1 types"): every other type, and every other parameter of these, is new in
# version 2, which a file that says version 1 may not use. Listed here rather than in each
# family so that a family adding a type or a parameter needs no version bookkeeping; the
# tests check that these names exist in the catalogue.
V1_PARAMS: dict[str, frozenset[str]] = {name: frozenset(params) for name, params in {
    "Input": ("shape",), "Linear": ("out_features", "bias"), "Dropout": ("p",),
    "Flatten": ("start_dim",), "Reshape": ("shape",), "Embedding": ("num_embeddings", "embedding_dim"),
    "ReLU": (), "Sigmoid": (), "Tanh": (), "GELU": (), "Identity": (),
    "LeakyReLU": ("negative_slope",), "ELU": ("alpha",), "Softmax": ("dim",), "LogSoftmax": ("dim",),
    "Conv1d": ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
    "Conv2d": ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
    "ConvTranspose2d": ("out_channels", "kernel_size", "stride", "padding", "output_padding", "bias"),
    "MaxPool2d": ("kernel_size", "stride", "padding"), "AvgPool2d": ("kernel_size", "stride", "padding"),
    "AdaptiveAvgPool2d": ("output_size",), "Upsample": ("scale_factor", "mode"),
    "BatchNorm1d": ("eps", "momentum"), "BatchNorm2d": ("eps", "momentum"), "LayerNorm": ("eps",),
    "RNN": ("hidden_size", "num_layers", "bidirectional", "dropout"),
    "LSTM": ("hidden_size", "num_layers", "bidirectional", "dropout"),
    "GRU": ("hidden_size", "num_layers", "bidirectional", "dropout"),
    "LastStep": (), "Add": (), "Multiply": (), "Concat": ("dim",),
}.items()}


# the category of every block type (``blocks.block_spec``): a project's own, not the catalogue's
BLOCK_CATEGORY = "Blocks"


class ShapeError(ValueError):
    """Raised by a shape rule: the message says what was received and what was expected;
    ``param`` names the parameter at fault, if one is."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class BlockIssues(ShapeError):
    """Raised by a block type's shape rule when the block's inside has errors: ``issues``
    (naming the nodes inside) are reported on the block node, each with its path."""

    def __init__(self, issues: list):
        super().__init__(str(issues[0]) if issues else "the block has errors")
        self.issues = issues


@dataclass(frozen=True)
class LayerSpec:
    """One layer type.

    ``infer(input_shapes, params) -> shape`` computes the output shape (no batch dimension)
    without torch, raising ``ShapeError``; ``count(input_shapes, params) -> int`` gives the
    number of trainable parameters; ``build(input_shapes, params) -> nn.Module`` makes the
    torch module (``samples`` are example uses, checked against it by
    tests/engine/test_catalogue.py); ``hints(input_shapes, params)`` returns ``[(param or None, message)]``
    warnings that do not block compiling. ``params`` always arrive complete (defaults filled)
    and within their ranges; input shapes within ``params.MAX_RANK`` dimensions of at most
    ``params.INT_LIMIT`` each. infer, count and hints run on every edit: closed-form arithmetic only,
    never a loop over a parameter's value (an LSTM of 10^12 layers hung the editor).
    """

    type: str
    category: str
    doc: str
    params: tuple[Param, ...]
    infer: Callable[[list[Shape], Params], Shape]
    build: Callable[[list[Shape], Params], Any]
    count: Callable[[list[Shape], Params], int] = lambda shapes, p: 0
    min_inputs: int = 1
    max_inputs: int | None = 1
    hints: Callable[[list[Shape], Params], list[tuple[str | None, str]]] | None = None
    # example uses, ((input shapes, ...), params as a file writes them): the catalogue test
    # checks each against torch (the shape rule and the count equal what the built module
    # does and has) and the first through compile, ONNX and Python export
    samples: tuple[tuple[tuple[Shape, ...], Params], ...] = ()
    # the names of the input slots, shown at the ports (None: "input", or numbered for merges)
    input_names: tuple[str, ...] | None = None
    # the names of the output ports; a callable when they depend on the parameters (Split).
    # With more than one (or a callable), ``infer`` returns a list of shapes, one per port,
    # and the built module returns a tuple of tensors in that order (``port_shapes``).
    outputs: tuple[str, ...] | Callable[[Params], tuple[str, ...]] = ("output",)
    # the format version that introduced the type: 0 (the default) means "derive it":
    # 1 for the types in ``V1_PARAMS``, else 2
    since: int = 0
    param_index: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})
        if not self.since:
            object.__setattr__(self, "since", 1 if self.type in V1_PARAMS else 2)

    def param_since(self, name: str) -> int:
        """The format version that introduced parameter ``name`` of this type."""
        return 1 if name in V1_PARAMS.get(self.type, ()) else max(self.since, 2)

    def multi_output(self) -> bool:
        """Whether nodes of this type may have several output ports (a callable
        ``outputs`` such as Split's may give one or several)."""
        return callable(self.outputs) or len(self.outputs) > 1

    def port_shapes(self, shapes: list[Shape], params: Params) -> tuple[Shape, ...]:
        """``infer``'s result as one shape per output port (a 1-tuple for one output)."""
        result = self.infer(shapes, params)
        if self.multi_output():
            return tuple(tuple(s) for s in result)
        return (tuple(result),)

    def output_shape(self, shapes: list[Shape], params: Params) -> Shape:
        """The shape of output port 0 (what ``infer`` gives for a one-output type)."""
        return self.port_shapes(shapes, params)[0]

    def output_names(self, params: Params) -> tuple[str, ...]:
        """The names of this node's output ports (``source_port`` k is the k-th)."""
        return self.outputs(params) if callable(self.outputs) else self.outputs

    def defaults(self) -> Params:
        """The parameters a new node of this type starts with (required ones left out)."""
        return {p.name: p.default for p in self.params if not p.required}

    def arity_text(self) -> str:
        if self.max_inputs is None:
            return f"{self.min_inputs} or more inputs"
        if self.min_inputs == self.max_inputs:
            n = self.min_inputs
            return "no inputs" if n == 0 else f"{n} input" + ("s" if n > 1 else "")
        return f"{self.min_inputs} to {self.max_inputs} inputs"
