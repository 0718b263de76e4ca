"""Input, dense, shape-changing and activation layers."""

from __future__ import annotations


from ..lazy import modules, nn, torch_class  # torch loads when a module is built, not here
from ..params import MAX_RANK, Param
from .helpers import batch_dim, fmt, numel
from .spec import LayerSpec, ShapeError

_identity = lambda shapes, p: shapes[0]  # noqa: E731


def _input(shapes, p):
    return tuple(p["shape"])


def _linear(shapes, p):
    return shapes[0][:-1] + (p["out_features"],)


def _linear_hints(shapes, p):
    """A Linear on an image or feature map acts on each position's last dimension, as torch
    does (ConvNeXt's channels-last MLP); in a course's network it is a missing Flatten."""
    shape = shapes[0]
    if len(shape) >= 3:
        return [(None, f"Linear acts on the last dimension only ({shape[-1]} values at each of "
                       f"{numel(shape[:-1])} positions of {fmt(shape)}); to connect all {numel(shape)} "
                       "values, add a Flatten before it")]
    return []


def _linear_count(shapes, p):
    return shapes[0][-1] * p["out_features"] + (p["out_features"] if p["bias"] else 0)


def _flatten(shapes, p):
    shape, start = shapes[0], p["start_dim"]
    if start > len(shape):
        raise ShapeError(
            f"start_dim {start} is past the last dimension of {fmt(shape)} "
            f"(dimensions count from 1 after the batch; use 1 to {len(shape)})",
            "start_dim",
        )
    end = batch_dim(p["end_dim"], len(shape), "end_dim") + 1  # counted with the batch
    if end < start:
        raise ShapeError(f"end_dim {p['end_dim']} comes before start_dim {start} in {fmt(shape)} "
                         "(both counted with the batch)", "end_dim")
    return shape[: start - 1] + (numel(shape[start - 1 : end]),) + shape[end:]


def _split_outputs(p) -> tuple[str, ...]:
    return tuple(f"part {k}" for k in range(len(p["sizes"])))


def _split(shapes, p):
    shape, sizes = shapes[0], p["sizes"]
    d = batch_dim(p["dim"], len(shape))
    if sum(sizes) != shape[d]:
        raise ShapeError(f"sizes {fmt(sizes)} add up to {sum(sizes)}, but dim {p['dim']} of {fmt(shape)} "
                         f"has size {shape[d]}; they must add up to it", "sizes")
    return [shape[:d] + (n,) + shape[d + 1 :] for n in sizes]


def _reshape(shapes, p):
    shape, target = shapes[0], list(p["shape"])
    total, known = numel(shape), numel([d for d in target if d != -1])
    if -1 in target:
        if total % known:
            raise ShapeError(
                f"cannot reshape {fmt(shape)} ({total} values) to {fmt(target)}: "
                f"{total} is not a multiple of {known}",
                "shape",
            )
        target[target.index(-1)] = total // known
    elif known != total:
        raise ShapeError(
            f"cannot reshape {fmt(shape)} ({total} values) to {fmt(target)} ({known} values)",
            "shape",
        )
    return tuple(target)


def _softmax(shapes, p):
    batch_dim(p["dim"], len(shapes[0]))
    return shapes[0]


def _embedding(shapes, p):
    n, pad = p["num_embeddings"], p["padding_idx"]
    if pad is not None and not -n <= pad < n:
        raise ShapeError(f"padding_idx {pad} is not an index of the {n} embeddings (use {-n} to {n - 1})",
                         "padding_idx")
    return shapes[0] + (p["embedding_dim"],)


def _embedding_build(shapes, p):
    return modules.Embedding(p["num_embeddings"], p["embedding_dim"], padding_idx=p["padding_idx"],
                             max_norm=p["max_norm"], norm_type=p["norm_type"],
                             scale_grad_by_freq=p["scale_grad_by_freq"], sparse=p["sparse"])


def _embedding_hints(shapes, p):
    if p["sparse"]:
        return [("sparse", "sparse gradients train only with SGD, SparseAdam or Adagrad; other optimizers "
                           "stop with an error")]
    return []


def _activation(name, torch_cls, doc, params=(), make=None, samples=()):
    return LayerSpec(
        name,
        "Activation",
        doc + " Any shape in, the same shape out.",
        tuple(params),
        _identity,
        make or (lambda shapes, p: torch_cls(**p)),
        samples=((((6,),), {}), (((2, 3, 4),), {})) + tuple(samples),
    )


_dim = Param("dim", "int", 1, "Dimension to normalize over, counted with the batch (1 = features).",
             -MAX_RANK, MAX_RANK)

SPECS = [
    LayerSpec(
        "Input", "Input",
        "A model input. Gives samples of `shape` (no batch dimension), e.g. [1, 28, 28].",
        (Param("shape", "shape", doc="Shape of one sample, without the batch dimension.", key=True),
         Param("dtype", "choice", "float32", "float32 for values; int64 for token ids that feed an Embedding.",
               choices=("float32", "int64"))),
        _input, lambda shapes, p: None, min_inputs=0, max_inputs=0,
    ),
    LayerSpec(
        "Linear", "Dense",
        "Fully connected layer: [..., in_features] -> [..., out_features].",
        (
            Param("out_features", "int", doc="Number of output units.", minimum=1, key=True),
            Param("bias", "bool", True, "Learn an additive bias."),
        ),
        _linear,
        lambda shapes, p: nn.Linear(shapes[0][-1], p["out_features"], bias=p["bias"]),
        _linear_count,
        hints=_linear_hints,
        samples=((((20,),), {"out_features": 7}), (((3, 5),), {"out_features": 4, "bias": False}),
                 (((4, 3, 6),), {"out_features": 5})),
    ),
    LayerSpec(
        "Dropout", "Regularization",
        "Zeroes each value with probability p while training. Same shape out.",
        (Param("p", "float", 0.5, "Probability of zeroing a value.", 0.0, 1.0, key=True),),
        _identity, lambda shapes, p: nn.Dropout(p["p"]),
        samples=((((10,),), {"p": 0.3}), (((3, 4, 5),), {})),
    ),
    LayerSpec(
        "Flatten", "Shape",
        "Flattens dimensions start_dim to end_dim: [C, H, W] -> [C*H*W] (end_dim 2: [C*H, W]).",
        (Param("start_dim", "int", 1, "First dimension to flatten, counted with the batch.", 1, MAX_RANK),
         Param("end_dim", "int", -1, "Last dimension to flatten, counted with the batch (-1: the last).",
               -MAX_RANK, MAX_RANK)),
        _flatten, lambda shapes, p: nn.Flatten(p["start_dim"], p["end_dim"]),
        samples=((((3, 4, 5),), {}), (((2, 3, 4, 5),), {"start_dim": 2, "end_dim": 3}),
                 (((2, 3, 4),), {"end_dim": -2})),
    ),
    LayerSpec(
        "Split", "Shape",
        "Cuts along dim into parts of the given sizes, one output each: [10] with sizes [3, 7] "
        "-> [3] and [7] (sizes must add up to the size of dim).",
        (Param("sizes", "shape", doc="Size of each part, in order; one output port per part.", key=True),
         Param("dim", "int", 1, "Dimension to cut, counted with the batch.", -MAX_RANK, MAX_RANK)),
        _split, lambda shapes, p: modules.Split(p["sizes"], p["dim"]),
        outputs=_split_outputs,
        samples=((((10,),), {"sizes": [3, 7]}), (((4, 6),), {"sizes": [1, 2, 3], "dim": 2}),
                 (((5, 3),), {"sizes": [2, 3], "dim": -2}), (((4,),), {"sizes": [4]})),
    ),
    LayerSpec(
        "Reshape", "Shape",
        "Reshapes each sample to `shape` (same number of values): [784] -> [1, 28, 28].",
        (Param("shape", "shape", doc="Target shape without the batch; one entry may be -1.",
               allow_minus_one=True, key=True),),
        _reshape, lambda shapes, p: modules.Reshape(p["shape"]),
        samples=((((12,),), {"shape": [3, 4]}), (((2, 3, 4),), {"shape": [-1, 4]})),
    ),
    LayerSpec(
        "Embedding", "Dense",
        "Looks up a learned vector per integer index: [T] -> [T, embedding_dim].",
        (
            Param("num_embeddings", "int", doc="Size of the vocabulary (indices 0 to n-1).", minimum=1, key=True),
            Param("embedding_dim", "int", doc="Length of each vector.", minimum=1, key=True),
            Param("padding_idx", "int", None, "An index whose vector stays zero and gets no gradient "
                  "(padding tokens); null for none.", nullable=True),
            Param("max_norm", "float", None, "Renormalize looked-up vectors longer than this; null: never.",
                  minimum=1e-12, nullable=True),
            Param("norm_type", "float", 2.0, "The p of the p-norm max_norm measures with.", minimum=1e-12),
            Param("scale_grad_by_freq", "bool", False, "Scale gradients by the inverse frequency of the "
                  "indices in the batch."),
            Param("sparse", "bool", False, "Sparse gradients for the weight (few optimizers take them)."),
        ),
        _embedding,
        _embedding_build,
        lambda shapes, p: p["num_embeddings"] * p["embedding_dim"],
        hints=_embedding_hints,
        samples=((((5,),), {"num_embeddings": 10, "embedding_dim": 3}),
                 (((2, 3),), {"num_embeddings": 7, "embedding_dim": 4, "padding_idx": 0}),
                 (((4,),), {"num_embeddings": 6, "embedding_dim": 2, "padding_idx": -1, "max_norm": 1.0,
                            "norm_type": 1.0, "scale_grad_by_freq": True})),
    ),
    _activation("ReLU", torch_class("ReLU"), "max(0, x)."),
    _activation("Sigmoid", torch_class("Sigmoid"), "1 / (1 + exp(-x)), values in (0, 1)."),
    _activation("Tanh", torch_class("Tanh"), "Hyperbolic tangent, values in (-1, 1)."),
    _activation(
        "GELU", torch_class("GELU"), "Gaussian error linear unit (approximate \"tanh\": its tanh approximation).",
        [Param("approximate", "choice", "none", "The exact form, or the faster tanh approximation.",
               choices=("none", "tanh"))],
        samples=[(((5,),), {"approximate": "tanh"})],
    ),
    _activation("Identity", torch_class("Identity"), "Passes its input through unchanged."),
    _activation(
        "LeakyReLU", torch_class("LeakyReLU"), "x if x > 0 else negative_slope * x.",
        [Param("negative_slope", "float", 0.01, "Slope for negative inputs.", key=True)],
        samples=[(((7,),), {"negative_slope": 0.2})],
    ),
    _activation(
        "ELU", torch_class("ELU"), "x if x > 0 else alpha * (exp(x) - 1).",
        [Param("alpha", "float", 1.0, "Value approached for large negative inputs.", key=True)],
        samples=[(((7,),), {"alpha": 0.5})],
    ),
    LayerSpec(
        "Softmax", "Activation",
        "Turns scores into probabilities along dim: [classes] -> [classes].",
        (_dim,), _softmax, lambda shapes, p: nn.Softmax(dim=p["dim"]),
        samples=((((10,),), {}), (((3, 4),), {"dim": -1}), (((3, 4),), {"dim": 1})),
    ),
    LayerSpec(
        "LogSoftmax", "Activation",
        "Log of softmax along dim (pairs with NLLLoss): [classes] -> [classes].",
        (_dim,), _softmax, lambda shapes, p: nn.LogSoftmax(dim=p["dim"]),
        samples=((((10,),), {}), (((3, 4),), {"dim": 2})),
    ),
]
