"""Run-time settings every notebook starts with: the scale of its experiments, the device, the seed.

A notebook runs at one of three scales, chosen from the environment so that the same notebook serves
CI, a student's laptop and a lab GPU without edits:

    smoke   CVKIT_SMOKE=1            seconds per notebook: tiny data, one or two steps (CI)
    cpu     no GPU present           a laptop: each training notebook well under 10 minutes
    gpu     CUDA available           the full experiment

``CVKIT_SCALE`` overrides the automatic choice between ``cpu`` and ``gpu`` (``CVKIT_SMOKE=1`` wins
over both), and ``CVKIT_DEVICE`` overrides the device.
"""
from __future__ import annotations

import os
import random
from typing import Literal, TypeVar

import numpy as np
import torch

Scale = Literal["smoke", "cpu", "gpu"]
SCALES: tuple[str, ...] = ("smoke", "cpu", "gpu")

T = TypeVar("T")


def scale() -> Scale:
    """The scale this run uses: 'smoke' if CVKIT_SMOKE=1, else CVKIT_SCALE if set, else 'gpu' with CUDA, else 'cpu'."""
    if os.environ.get("CVKIT_SMOKE", "").strip() not in ("", "0"):
        return "smoke"
    chosen = os.environ.get("CVKIT_SCALE", "").strip().lower()
    if chosen:
        if chosen not in SCALES:
            raise ValueError(f"CVKIT_SCALE must be one of {', '.join(SCALES)}, got {chosen!r}")
        return chosen  # type: ignore[return-value]
    return "gpu" if torch.cuda.is_available() else "cpu"


def by_scale(smoke: T, cpu: T, gpu: T) -> T:
    """Pick the value for the current scale, e.g. ``epochs = by_scale(smoke=1, cpu=5, gpu=30)``."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[scale()]


def device() -> torch.device:
    """The device to compute on: CVKIT_DEVICE if set, else the first CUDA GPU, else the CPU.

    Apple's MPS backend is not chosen automatically: it lacks float64 and several ops the kit uses.
    Set ``CVKIT_DEVICE=mps`` to try it.
    """
    chosen = os.environ.get("CVKIT_DEVICE", "").strip()
    if chosen:
        try:
            return torch.device(chosen)
        except RuntimeError as err:
            raise ValueError(f"CVKIT_DEVICE must name a torch device such as 'cpu' or 'cuda:0', got {chosen!r}") from err
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0, deterministic: bool = False) -> int:
    """Seed Python's, NumPy's and torch's generators (CPU and CUDA) and return the seed.

    Args:
        seed: the seed, a non-negative integer.
        deterministic: also ask torch for deterministic kernels (slower on GPU; raises if an op has none).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA too
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def describe() -> str:
    """One line a notebook prints at its top: scale, device and library versions."""
    import torchvision

    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    return (f"scale={scale()}  device={dev} ({name})  torch {torch.__version__}  "
            f"torchvision {torchvision.__version__}  threads={torch.get_num_threads()}")
