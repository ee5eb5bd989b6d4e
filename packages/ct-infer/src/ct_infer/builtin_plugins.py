"""ct-infer's built-in plugins, registered through the ``camtrap.plugins`` entry point."""

from __future__ import annotations

from typing import Any

from ct_io import hookimpl


@hookimpl
def ct_register_backbones(register: Any) -> None:
    """torchvision ResNets, efficientnet-pytorch EfficientNets, EfficientNet-Lite0, timm."""
    from ct_infer.zoo import register_builtin_backbones

    register_builtin_backbones(register)
