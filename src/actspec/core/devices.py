"""The one device resolver: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` to a torch device that
exists here; anything else is a :class:`~actspec.core.validate.ParameterError` naming ``device``."""

from __future__ import annotations

from typing import Any

from .validate import ParameterError

__all__ = ["check_device", "resolve_device", "DEVICES", "DEVICE_HELP"]

DEVICES = ("cpu", "cuda", "cuda:N", "mps", "auto")
DEVICE_HELP = "cpu, cuda, cuda:N, mps, or auto (CUDA when present)"


def check_device(device: Any, param: str = "device") -> Any:
    """Resolve ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` (CUDA when present) or
    None (= auto) to a ``torch.device`` that exists on this machine."""
    import torch

    p = f"{{-{param}}}"
    if isinstance(device, torch.device):
        dev = device
    else:
        text = "auto" if device is None else str(device).strip().lower()
        if text == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(text)
        except (RuntimeError, TypeError, ValueError):
            raise ParameterError(
                f"unknown {p} {device!r}; use cpu, cuda, cuda:N, mps or auto"
            ) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(
                f"{p} {device}: no CUDA GPU is available here; use {p} cpu (or auto)"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ParameterError(
                f"{p} {device}: only {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
        return dev
    if dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ParameterError(f"{p} {device}: MPS is not available here; use {p} cpu")
        return dev
    raise ParameterError(f"{p} {device!r} is not supported; use cpu, cuda, cuda:N, mps or auto")


def resolve_device(device: Any, param: str = "device") -> str:
    """:func:`check_device` as text (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...); plain ``"cpu"``
    is answered without importing torch."""
    if isinstance(device, str) and device.strip().lower() == "cpu":
        return "cpu"
    return str(check_device(device, param))
