"""Checks for notebook 07 (upsampling and transposed convolution)."""
from __future__ import annotations

__all__: list[str] = []
