"""Checked torch devices: a bad or unavailable ``--device`` is an :class:`ActspecError`."""

from __future__ import annotations

from typing import Any

from .errors import ActspecError

__all__ = ["check_device", "DEVICES"]

DEVICES = ("cpu", "cuda", "cuda:N", "mps", "auto")


def check_device(device: Any) -> Any:
    """Resolve ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` (CUDA when present) or
    None (= auto) to a ``torch.device`` that exists on this machine."""
    import torch

    if isinstance(device, torch.device):
        dev = device
    else:
        text = "auto" if device is None else str(device).strip().lower()
        if text == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(text)
        except (RuntimeError, TypeError, ValueError):
            raise ActspecError(
                f"unknown --device {device!r}; use cpu, cuda, cuda:N, mps or auto"
            ) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ActspecError(
                f"--device {device}: no CUDA GPU is available here; use --device cpu (or auto)"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ActspecError(
                f"--device {device}: only {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
        return dev
    if dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ActspecError(f"--device {device}: MPS is not available here; use --device cpu")
        return dev
    raise ActspecError(f"--device {device!r} is not supported; use cpu, cuda, cuda:N, mps or auto")
