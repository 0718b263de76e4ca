"""(filled by issue 16's catalogue work)"""

from __future__ import annotations

from torch import nn  # noqa: F401
