"""Checks for notebook 08 (dilated convolution and receptive fields)."""
from __future__ import annotations

__all__: list[str] = []
