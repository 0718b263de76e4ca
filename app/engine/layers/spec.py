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
    torch module; ``hints(input_shapes, params)`` returns ``[(param or None, message)]``
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
    param_index: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

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
