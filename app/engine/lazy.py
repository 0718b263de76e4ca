"""Modules imported on first use: the layer catalogue names torch's modules in its builders,
but shape inference, ``netcanvas check`` and the editor's first paint never build one, and
importing torch takes seconds (issue 20: checking a file needs no torch)."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType


class LazyModule:
    """Stands for the module ``name``, imported at the first attribute read (then every read
    goes to the real module, which ``sys.modules`` keeps)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


nn = LazyModule("torch.nn")  # what the layer declarations' builders call
modules = LazyModule("app.engine.modules")  # NetCanvas's own torch modules


def torch_class(name: str):
    """A maker of ``torch.nn.<name>`` instances that imports torch when first called: for the
    declarations that pick their module class as the catalogue loads."""
    def make(*args, **kwargs):
        return getattr(nn, name)(*args, **kwargs)

    make.__name__ = make.__qualname__ = name
    return make


def no_grad(function):
    """``@torch.no_grad()`` for a module that must not import torch as it loads: torch is
    imported when ``function`` first runs."""
    @functools.wraps(function)
    def without_gradients(*args, **kwargs):
        with importlib.import_module("torch").no_grad():
            return function(*args, **kwargs)

    return without_gradients
