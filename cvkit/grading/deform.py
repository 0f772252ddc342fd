"""Checks for notebook 09 (deformable convolution)."""
from __future__ import annotations

__all__: list[str] = []
