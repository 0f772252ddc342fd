"""Checks for notebook 05 (Faster R-CNN)."""
from __future__ import annotations

__all__: list[str] = []
