"""What one layer type is: a declaration read by every part of NetCanvas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..params import Param

Shape = tuple[int, ...]
Params = dict[str, Any]


class ShapeError(ValueError):
    """Raised by a shape rule: the message says what was received and what was expected;
    ``param`` names the parameter at fault, if one is."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


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
    # With more than one, ``infer`` returns a list of shapes, one per port, and the built
    # module returns a tuple of tensors in that order.
    outputs: tuple[str, ...] | Callable[[Params], tuple[str, ...]] = ("output",)
    param_index: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

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
