"""The layer catalogue: every layer type, declared once (see ``spec.LayerSpec``).

Adding a layer type means adding one ``LayerSpec`` to one of the ``SPECS`` lists below.
"""

from __future__ import annotations

from . import conv, core, norm_rnn_merge
from .spec import LayerSpec, ShapeError

CATALOGUE: dict[str, LayerSpec] = {
    spec.type: spec for spec in (*core.SPECS, *conv.SPECS, *norm_rnn_merge.SPECS)
}

CATEGORIES = ("Input", "Dense", "Convolution", "Pooling", "Normalization", "Activation",
              "Regularization", "Shape", "Recurrent", "Merge")


def get_spec(type_name: str) -> LayerSpec | None:
    """The declaration of ``type_name``, or None when the catalogue has no such type."""
    return CATALOGUE.get(type_name)


__all__ = ["CATALOGUE", "CATEGORIES", "LayerSpec", "ShapeError", "get_spec"]
