"""(filled by issue 16's catalogue work)"""

from __future__ import annotations

from .spec import LayerSpec

SPECS: list[LayerSpec] = []
