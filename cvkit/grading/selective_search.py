"""Checks for notebook 03 (selective search)."""
from __future__ import annotations

__all__: list[str] = []
