"""What an ONNX tensor is while a model is imported: a constant, a shape that holds the
(unknown) batch size, a constant-filled tensor of such a shape, or a view of the output of a
NetCanvas node.

Views are what let converter output through: a Transpose, Reshape, Squeeze or Flatten does
not become a layer; it rearranges which element of the node's output sits where. A view is
the node's output (batch first) split into "atoms" (sizes whose product is its number of
elements, in memory order) and each axis of the ONNX tensor lists the atoms it spans. A
Transpose reorders the axes; a Reshape regroups the atoms (splitting one where needed). The
view is the node's output itself when the atoms are in memory order and the shape matches,
and a plain Reshape of it when they are in order and the batch is the first axis alone. So
``Transpose(perm=[1, 0, 2])`` before an ONNX LSTM and the one after it cancel out, while a
Transpose that is never undone becomes layers (``onnx_views``) unless it moves the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd
from typing import Any

import numpy as np


class NotExact(ValueError):
    """An operation whose result this representation cannot express."""


class Unsupported(Exception):
    """Raised by a converter: ``reason`` says why; ``blame`` names other ONNX nodes at
    fault (a Transpose never undone) instead of the one being converted."""

    def __init__(self, reason: str | None = None, blame: list[str] | None = None):
        super().__init__(reason or "")
        self.reason = reason
        self.blame = blame


class Poisoned(Exception):
    """An input comes from a node that already failed: fail quietly."""


class Sym:
    """``coef * N ** power``: a size involving the batch size N (power >= 1)."""

    __slots__ = ("coef", "power")

    def __init__(self, coef: int, power: int = 1):
        self.coef, self.power = int(coef), int(power)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sym) and (self.coef, self.power) == (other.coef, other.power)

    def __hash__(self) -> int:
        return hash((self.coef, self.power))

    def __repr__(self) -> str:
        n = "N" if self.power == 1 else f"N^{self.power}"
        return n if self.coef == 1 else f"{self.coef}*{n}"


N = Sym(1, 1)
Size = "int | Sym"


def _parts(x) -> tuple[int, int]:
    return (x.coef, x.power) if isinstance(x, Sym) else (int(x), 0)


def _make(coef: int, power: int):
    return int(coef) if power == 0 else Sym(coef, power)


def dmul(a, b):
    (ca, pa), (cb, pb) = _parts(a), _parts(b)
    return _make(ca * cb, pa + pb)


def ddiv(a, b):
    """``a / b`` when exact (an integer count of N powers), else ``NotExact``."""
    (ca, pa), (cb, pb) = _parts(a), _parts(b)
    if cb == 0 or pa < pb or ca % cb:
        raise NotExact(f"{a} is not a multiple of {b}")
    return _make(ca // cb, pa - pb)


def divides(b, a) -> bool:
    try:
        ddiv(a, b)
        return True
    except NotExact:
        return False


def dprod(sizes) -> Any:
    out: Any = 1
    for s in sizes:
        out = dmul(out, s)
    return out


def is_sym(x) -> bool:
    return isinstance(x, Sym)


def show_shape(shape) -> str:
    return "[" + ", ".join("batch" if s == N else str(s) for s in shape) + "]"


# -- values -------------------------------------------------------------------------------
@dataclass(eq=False)
class Const:
    """A value known while importing (initializers, Constant nodes, folded subgraphs)."""

    array: np.ndarray


@dataclass(eq=False)
class SymVec:
    """A 0-d or 1-d integer tensor some of whose entries involve the batch size."""

    items: list
    scalar: bool = False


@dataclass(eq=False)
class Filled:
    """A tensor holding one value everywhere, of a shape that involves the batch size
    (the zero initial states converters build with Shape/ConstantOfShape/Expand)."""

    value: float
    shape: list


@dataclass(eq=False)
class Tensor:
    """A view of the output (with batch) of graph node ``node``; see the module doc."""

    node: str
    atoms: list
    axes: list
    made_by: tuple = ()
    cache: dict = field(default_factory=dict)

    @property
    def shape(self) -> list:
        return [dprod(self.atoms[i] for i in ax) for ax in self.axes]

    @property
    def in_order(self) -> bool:
        flat = [i for ax in self.axes for i in ax]
        return flat == list(range(len(self.atoms)))

    @property
    def batch_first(self) -> bool:
        """In memory order with the batch alone on the first axis: a Reshape of the node."""
        return self.in_order and bool(self.axes) and self.axes[0] == [0] and self.atoms[0] == N

    def same_view(self, other: Tensor) -> bool:
        return self.atoms == other.atoms and self.axes == other.axes


@dataclass(eq=False)
class Pending:
    """Part of a pattern that becomes one layer once complete (GELU written out with Erf,
    a zero Pad before a Conv); ``origin`` names the ONNX nodes it stands for."""

    kind: str
    x: Tensor
    origin: list
    data: dict = field(default_factory=dict)


@dataclass(eq=False)
class Poison:
    """The output of a node that could not be imported."""


def plain(node: str, shape) -> Tensor:
    """The output of ``node`` as it is, of ``shape`` (batch included)."""
    atoms, axes = [], []
    for d in shape:
        if d == 1:
            axes.append([])
        else:
            axes.append([len(atoms)])
            atoms.append(d)
    return Tensor(node, atoms, axes)


def transpose(t: Tensor, perm: list[int], by: str) -> Tensor:
    if sorted(perm) != list(range(len(t.axes))):
        raise NotExact(f"perm {perm} is not a permutation of {len(t.axes)} axes")
    return Tensor(t.node, list(t.atoms), [list(t.axes[p]) for p in perm], t.made_by + (by,))


def reshape(t: Tensor, target: list, by: str) -> Tensor:
    """The view ``t`` reshaped to ``target`` (sizes, already resolved: no 0 or -1)."""
    if dprod(target) != dprod(t.atoms):
        raise NotExact(f"cannot reshape {show_shape(t.shape)} to {show_shape(target)}")
    made_by = t.made_by + (by,)
    if t.in_order:  # contiguous: any reshape is one
        return plain_like(t.node, target, made_by)
    atoms = list(t.atoms)
    seq = [i for ax in t.axes for i in ax]
    out: list[list[int]] = []
    pos = 0

    def split(k: int, outer) -> None:
        nonlocal seq, out
        atoms[k:k + 1] = [outer, ddiv(atoms[k], outer)]
        seq = [i + 1 if i > k else i for i in seq]
        seq[pos:pos + 1] = [k, k + 1]
        out = [[i + 1 if i > k else i for i in ax] for ax in out]

    for d in target:
        group: list[int] = []
        need = d
        while need != 1:
            if pos >= len(seq):
                raise NotExact("sizes do not line up")
            k = seq[pos]
            a = atoms[k]
            if divides(a, need):
                need = ddiv(need, a)
            elif divides(need, a):
                split(k, need)
                need = 1
            else:
                g = gcd(*(_parts(x)[0] for x in (a, need))) if not (is_sym(a) or is_sym(need)) else 1
                if g == 1:
                    raise NotExact(f"cannot regroup {show_shape(t.shape)} as {show_shape(target)}")
                split(k, g)
                need = ddiv(need, g)
            group.append(seq[pos])
            pos += 1
        out.append(group)
    if pos != len(seq):
        raise NotExact("sizes do not line up")
    return Tensor(t.node, atoms, out, made_by)


def plain_like(node: str, shape, made_by=()) -> Tensor:
    t = plain(node, shape)
    t.made_by = tuple(made_by)
    return t


def resolve_target(t_shape: list, target: list, allowzero: bool, fixed_batch: int | None) -> list:
    """A Reshape's target with 0 (copy) and -1 (infer) resolved against ``t_shape``."""
    out: list = []
    unknown = None
    for i, d in enumerate(target):
        if is_sym(d):
            out.append(d)
        elif d == 0 and not allowzero:
            if i >= len(t_shape):
                raise NotExact(f"0 at axis {i} copies no dimension of {show_shape(t_shape)}")
            out.append(t_shape[i])
        elif d == -1:
            if unknown is not None:
                raise NotExact("two -1 in a Reshape target")
            unknown = i
            out.append(None)
        elif d < 0:
            raise NotExact(f"negative size {d} in a Reshape target")
        else:
            out.append(int(d))
    if fixed_batch is not None and out and out[0] == fixed_batch and t_shape and t_shape[0] == N:
        out[0] = N  # a model exported at a fixed batch size spells the batch as a number
    if unknown is not None:
        known = dprod(x for x in out if x is not None)
        out[unknown] = ddiv(dprod(t_shape), known)
    return out


def squeeze_shape(shape: list, axes: list[int] | None) -> list:
    if axes is None:
        return [d for d in shape if d != 1]
    norm = {a + len(shape) if a < 0 else a for a in axes}
    for a in norm:
        if not 0 <= a < len(shape) or shape[a] != 1:
            raise NotExact(f"cannot squeeze axis {a} of {show_shape(shape)}")
    return [d for i, d in enumerate(shape) if i not in norm]


def unsqueeze_shape(shape: list, axes: list[int]) -> list:
    rank = len(shape) + len(axes)
    norm = sorted(a + rank if a < 0 else a for a in axes)
    out = list(shape)
    for a in norm:
        if not 0 <= a <= len(out):
            raise NotExact(f"cannot unsqueeze axis {a}")
        out.insert(a, 1)
    return out


# -- helpers shared by the converters ----------------------------------------------------
PENDING_REASONS = {
    "scale": "multiplies or divides the data by a constant; NetCanvas has no layer for that "
             "(it maps only inside GELU's x * 0.5 * (1 + erf(x / sqrt(2))))",
    "erf": "Erf maps only inside GELU's x * 0.5 * (1 + erf(x / sqrt(2)))",
    "gelu": "an incomplete GELU pattern (x * 0.5 * (1 + erf(x / sqrt(2))))",
    "int": "casts the data to integers; NetCanvas does that only for indices into an Embedding",
    "abs": "takes the absolute value of the data; NetCanvas maps Abs only inside Softsign's x / (1 + |x|)",
    "softsign": "an incomplete Softsign pattern (x / (1 + |x|))",
    "pad": "pads the data before an operator NetCanvas cannot follow it through",
}


def f32(x) -> float:
    """A float stored as float32 in the file, as the user wrote it (0.2, not 0.2000000029)."""
    return float(str(np.float32(x)))


def const(value, what: str) -> np.ndarray:
    if isinstance(value, Const):
        return value.array
    raise Unsupported(f"its {what} is not a constant; NetCanvas layers hold their weights")


def ints(value, what: str) -> list[int]:
    """A constant integer vector (or scalar) as a list; ``Unsupported`` for anything else."""
    a = const(value, what)
    if a.dtype.kind not in "iu" or a.ndim > 1:
        raise Unsupported(f"its {what} is a {a.dtype} tensor of shape {list(a.shape)}; ONNX takes a "
                          "vector of integers")
    return [int(v) for v in a.reshape(-1)]


def lengths(node, ndim: int, **given) -> None:
    """Window attributes must give one value per spatial axis (``pads`` two)."""
    for name, values in given.items():
        want = 2 * ndim if name == "pads" else ndim
        if values is not None and len(values) != want:
            raise Unsupported(f"its {name} {list(values)} has {len(values)} values; {want} are needed "
                              f"for {ndim}-d data")


def int_or_list(values: list[int], ndim: int):
    values = [int(v) for v in values]
    return values[0] if ndim == 1 or len(set(values)) == 1 else values


def axis_in(axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` (possibly negative) as an index into ``rank`` axes, or ``Unsupported``."""
    if not -rank <= axis < rank:
        raise Unsupported(f"its {what} {axis} is outside the {rank} axes of its input")
    return axis + rank if axis < 0 else axis


def scalar(value) -> float | None:
    if isinstance(value, Const) and value.array.size == 1 and value.array.dtype.kind in "fiu":
        return float(value.array.reshape(-1)[0])
    return None
