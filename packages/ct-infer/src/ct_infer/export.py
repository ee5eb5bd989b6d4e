"""Export a bundle as a self-contained model: TorchScript or ONNX.

The exported network takes normalized float input (N, 3, size, size) — ImageNet-style
``ToTensor`` + ``Normalize``, as the seed's ``run_classifier.py`` feeds it — and returns
logits already divided by the bundle's calibration temperature. The bundle metadata rides
along (TorchScript extra file ``camtrap.json``; ONNX metadata property ``camtrap``), so
``ct-infer classify`` and ``evaluate`` can use an export like a bundle.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ct_infer.backbones import model_from_bundle
from ct_infer.bundle import ONNX_META, TORCHSCRIPT_META, Bundle
from ct_io.atomic import write_bytes_atomic
from ct_io.errors import CamtrapError

if TYPE_CHECKING:
    import torch

ExportFormat = Literal["torchscript", "onnx"]
ONNX_OPSET = 17


def _exportable(bundle: Bundle) -> torch.nn.Module:
    import torch

    model: Any = model_from_bundle(bundle)
    if hasattr(model, "set_swish"):  # efficientnet-pytorch: memory-efficient swish is not traceable
        model.set_swish(memory_efficient=False)

    class Calibrated(torch.nn.Module):
        def __init__(self, net: torch.nn.Module, temperature: float) -> None:
            super().__init__()
            self.net = net
            self.temperature = temperature

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) / self.temperature

    return Calibrated(model, float(bundle.meta.temperature)).eval()


def example_input(bundle: Bundle, batch: int = 2) -> torch.Tensor:
    """A deterministic normalized input of the bundle's size."""
    import torch

    g = torch.Generator().manual_seed(0)
    size = bundle.meta.preprocessing.input_size
    return torch.randn(batch, 3, size, size, generator=g)


def export_bundle(bundle: Bundle, output: str | os.PathLike[str], fmt: ExportFormat) -> Path:
    """Write the export (atomically) and return its path."""
    out = Path(output)
    if fmt == "torchscript":
        export_torchscript(bundle, out)
    elif fmt == "onnx":
        export_onnx(bundle, out)
    else:
        raise CamtrapError(f"unknown export format {fmt!r}; use torchscript or onnx")
    return out


def export_torchscript(bundle: Bundle, output: Path) -> None:
    """Trace the network into a TorchScript file carrying the bundle metadata."""
    import io

    import torch

    module = _exportable(bundle)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(module, example_input(bundle), check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(
        traced, buffer, _extra_files={TORCHSCRIPT_META: json.dumps(bundle.meta.to_json())}
    )
    write_bytes_atomic(output, buffer.getvalue())


def export_onnx(bundle: Bundle, output: Path) -> None:
    """Export to ONNX (dynamic batch size) with the bundle metadata as a model property."""
    import io

    import torch

    try:
        import onnx
    except ImportError:
        raise CamtrapError(
            "ONNX export needs the onnx package: pip install 'ct-infer[onnx]'"
        ) from None
    module = _exportable(bundle)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example_input(bundle),),
            buffer,  # type: ignore[arg-type]
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_META, json.dumps(bundle.meta.to_json())
    write_bytes_atomic(output, model.SerializeToString())


def max_abs_difference(bundle: Bundle, exported: str | os.PathLike[str], batch: int = 3) -> float:
    """Largest difference between the bundle's and the export's logits on the same input."""
    import torch

    x = example_input(bundle, batch)
    with torch.no_grad():
        reference = model_from_bundle(bundle)(x) / bundle.meta.temperature
    if Path(exported).suffix.lower() == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        got = torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    else:
        with torch.no_grad():
            got = torch.jit.load(str(exported), map_location="cpu")(x)
    return float((reference - got).abs().max())
