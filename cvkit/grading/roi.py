"""Checks for notebook 04 (RoI pooling and RoIAlign)."""
from __future__ import annotations

__all__: list[str] = []
