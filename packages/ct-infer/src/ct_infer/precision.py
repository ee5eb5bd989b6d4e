"""Which floating-point precision a network runs in, chosen by what the hardware does fast.

bf16 autocast is a speed-up only where the hardware computes in bf16: on a CPU without
AVX-512 bf16 or AMX it is emulated and runs several times slower than fp32 (resnet18 on an
AVX2-only EPYC: 308 s against 82 s for 1,000 crops). ``auto`` therefore picks bf16 only on
CPUs with native bf16 and CUDA devices that support it, fp16 on other CUDA devices, and
fp32 everywhere else. ct-train's ``train.amp`` uses the same decision.
"""

from __future__ import annotations

import platform
from enum import StrEnum
from typing import TYPE_CHECKING

from attrs import frozen

if TYPE_CHECKING:
    import torch

_X86 = {"x86_64", "amd64", "i386", "i686"}


class Precision(StrEnum):
    """``--precision``: ``auto`` or the precision to run in."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


@frozen
class Resolved:
    """The precision a run uses, and why (for the run's summary line)."""

    precision: Precision
    reason: str

    @property
    def autocast(self) -> bool:
        """Whether the network runs under autocast (anything but fp32)."""
        return self.precision is not Precision.FP32

    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for plain fp32."""
        import torch

        return {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}.get(self.precision)

    def describe(self) -> str:
        """e.g. ``fp32: this CPU has no native bf16``."""
        return f"{self.precision.value}: {self.reason}"


def resolve_precision(
    setting: Precision | str,
    device_type: str,
    *,
    cpu_native_bf16: bool | None = None,
    cuda_bf16: bool | None = None,
) -> Resolved:
    """The precision ``setting`` means on a device of ``device_type`` (cpu, cuda, mps).

    The capabilities are probed when not given (tests inject them).
    """
    setting = Precision(setting)
    if device_type == "mps":
        return Resolved(Precision.FP32, "autocast is not used on Apple MPS")
    if setting is not Precision.AUTO:
        return Resolved(setting, "as asked")
    if device_type == "cuda":
        has_bf16 = cuda_bf16 if cuda_bf16 is not None else _cuda_has_bf16()
        if has_bf16:
            return Resolved(Precision.BF16, "this CUDA device supports bf16")
        return Resolved(Precision.FP16, "this CUDA device has no bf16")
    if device_type != "cpu":
        return Resolved(Precision.FP32, f"no autocast choice for {device_type} devices")
    native = cpu_native_bf16 if cpu_native_bf16 is not None else cpu_has_native_bf16()
    if native:
        return Resolved(Precision.BF16, "this CPU has native bf16")
    return Resolved(Precision.FP32, "this CPU has no native bf16")


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (AVX-512 bf16 or AMX; Arm's bf16)."""
    import torch

    try:
        if platform.machine().lower() in _X86:
            cpu = torch.cpu
            return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cuda_has_bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
