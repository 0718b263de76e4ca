"""The layer catalogue: every layer type, declared once (see ``spec.LayerSpec``).

Adding a layer type means adding one ``LayerSpec`` to the ``SPECS`` list of one of the
``FAMILIES`` below (one module per family of layers).
"""

from __future__ import annotations

from . import (activations, attention, conv, core, merge, norm, padding, pooling, recurrent, regularization,
               reshaping, tokens)
from .spec import LayerSpec, ShapeError

FAMILIES = (core, activations, conv, pooling, padding, norm, regularization, reshaping, tokens, recurrent, attention,
            merge)
CATALOGUE: dict[str, LayerSpec] = {spec.type: spec for family in FAMILIES for spec in family.SPECS}

CATEGORIES = ("Input", "Dense", "Convolution", "Pooling", "Padding", "Normalization", "Activation",
              "Regularization", "Shape", "Transformer", "Attention", "Recurrent", "Merge")


def get_spec(type_name: str) -> LayerSpec | None:
    """The declaration of ``type_name``, or None when the catalogue has no such type."""
    return CATALOGUE.get(type_name)


__all__ = ["CATALOGUE", "CATEGORIES", "LayerSpec", "ShapeError", "get_spec"]
