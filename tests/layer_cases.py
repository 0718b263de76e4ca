"""Shape-rule helpers shared by the layer tests: a type's parameters completed (defaults)
and checked, its inferred shape, or the ShapeError it raises."""

from __future__ import annotations

import pytest

from app.engine.layers import CATALOGUE as SPECS
from app.engine.layers.spec import ShapeError


def complete(name: str, given: dict) -> dict:
    spec = SPECS[name]
    params = {**spec.defaults(), **given}
    for p in spec.params:
        assert p.check(params[p.name]) == params[p.name], p.name
    return params


def infer(name: str, shape, given: dict):
    return SPECS[name].infer([tuple(shape)], complete(name, given))


def infer_error(name: str, shape, given: dict) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        infer(name, shape, given)
    return info.value
