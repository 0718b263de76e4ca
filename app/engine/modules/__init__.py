"""The small torch modules that stand for catalogue layers torch has no module for, one
submodule per family, all reachable from here (``modules.Reshape``).

Each keeps torch's own parameter names so a state_dict reads ``<node id>.<torch name>``.
``export --python`` copies their source into model.py, so a family imports only torch and
the standard library, never NetCanvas. A new family is listed in ``FAMILIES``.
"""

from __future__ import annotations

from . import attention, core, merge, recurrent, tokens

FAMILIES = (core, merge, recurrent, tokens, attention)

for _family in FAMILIES:
    globals().update({name: value for name, value in vars(_family).items()
                      if isinstance(value, type) and value.__module__ == _family.__name__})
