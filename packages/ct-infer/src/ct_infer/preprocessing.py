"""What a network expects of its input: size, normalisation, resize policy.

Saved in every bundle beside the weights, so inference feeds a model what it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from attrs import frozen

#: How a crop becomes the square network input: ``squash`` resizes to size × size (crops
#: are square already when made with square crops); ``center-crop`` resizes the short side
#: then cuts the centre.
ResizePolicy = Literal["squash", "center-crop"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@frozen
class Preprocessing:
    """What the network expects of its input."""

    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: ResizePolicy = "squash"
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": self.resize,
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        return cls(
            input_size=int(data["input_size"]),
            mean=_triple(data["mean"]),
            std=_triple(data["std"]),
            resize=data.get("resize", "squash"),
            interpolation=data.get("interpolation", "bilinear"),
        )


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)
