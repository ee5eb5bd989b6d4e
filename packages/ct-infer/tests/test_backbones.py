from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ct_infer.backbones import (
    BuiltBackbone,
    Preprocessing,
    PretrainedKind,
    PretrainedSource,
    build_backbone,
    list_backbones,
)
from ct_infer.zoo import lite0_state_dict
from ct_io import hookimpl
from ct_io.errors import CamtrapError, PluginError
from ct_io.plugins import make_plugin_manager

FAST = ["resnet18", "efficientnet-b0", "efficientnet-lite0", "timm:test_resnet"]
HEAVY = ["resnet34", "resnet50", "resnet101", "resnet152"] + [
    f"efficientnet-b{i}" for i in range(1, 8)
]


def _forward(built: BuiltBackbone, classes: int) -> None:
    module = built.module.eval()
    with torch.no_grad():
        out = module(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()
    assert built.preprocessing.input_size >= 64


@pytest.mark.parametrize("name", FAST)
def test_backbone_contract(name: str) -> None:
    _forward(build_backbone(name, 5), 5)


@pytest.mark.slow
@pytest.mark.parametrize("name", HEAVY)
def test_backbone_contract_large_variants(name: str) -> None:
    _forward(build_backbone(name, 3), 3)


def test_every_builtin_family_is_registered() -> None:
    names = list_backbones()
    for expected in [f"resnet{d}" for d in (18, 34, 50, 101, 152)] + [
        f"efficientnet-b{i}" for i in range(8)
    ]:
        assert expected in names
    assert "timm" in names and "efficientnet-lite0" in names


def test_native_input_sizes_and_normalization() -> None:
    assert build_backbone("efficientnet-b0", 2).preprocessing.input_size == 224
    lite = build_backbone("efficientnet-lite0", 2).preprocessing
    assert lite.mean == lite.std == (0.5, 0.5, 0.5)
    assert (
        build_backbone("resnet18", 2, options={"input_size": 160}).preprocessing.input_size == 160
    )


def test_timm_names_and_options_are_recorded() -> None:
    built = build_backbone("timm:test_efficientnet", 4, options={"input_size": 64})
    assert built.options == {"model": "test_efficientnet", "input_size": 64}


def test_unknown_names_and_options_fail_clearly() -> None:
    with pytest.raises(PluginError, match="did you mean 'resnet18'"):
        build_backbone("resnet81", 3)
    with pytest.raises(CamtrapError, match="timm has no model"):
        build_backbone("timm:no_such_net", 3)
    with pytest.raises(CamtrapError, match="dropout_rat"):
        build_backbone("resnet18", 3, options={"dropout_rat": 0.1})
    with pytest.raises(CamtrapError, match="no offline-imagenet weights"):
        build_backbone("resnet18", 3, "offline-imagenet")


def test_pretrained_parsing(tmp_path: Path) -> None:
    assert PretrainedSource.parse(None).kind is PretrainedKind.NONE
    assert PretrainedSource.parse("imagenet").kind is PretrainedKind.HUB
    assert PretrainedSource.parse("offline-imagenet").kind is PretrainedKind.OFFLINE
    f = tmp_path / "b.safetensors"
    f.write_bytes(b"x")
    assert PretrainedSource.parse(str(f)) == PretrainedSource(PretrainedKind.BUNDLE, f)
    with pytest.raises(CamtrapError, match="not a file"):
        PretrainedSource.parse(str(tmp_path / "missing.safetensors"))


def test_third_party_backbone_plugin() -> None:
    class Plugin:
        @hookimpl
        def ct_register_backbones(self, register):  # type: ignore[no-untyped-def]
            def factory(num_classes, pretrained):  # type: ignore[no-untyped-def]
                return BuiltBackbone(
                    torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(num_classes)),
                    Preprocessing(32),
                )

            register("flat", factory, description="a linear probe")

    pm = make_plugin_manager()
    pm.register_plugin(Plugin(), "flat-plugin", distribution="flat-dist")
    built = build_backbone("flat", 2, pm=pm)
    assert built.module(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    assert "flat" in list_backbones(pm)


def test_offline_lite0_maps_every_tensor() -> None:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", num_classes=1000)
    mapped = lite0_state_dict(model)
    assert set(mapped) == set(model.state_dict())  # one-to-one, 1000-class head included
    fresh = timm.create_model("tf_efficientnet_lite0", num_classes=7)
    assert set(lite0_state_dict(fresh)) == set(fresh.state_dict()) - {
        "classifier.weight",
        "classifier.bias",
    }


def test_offline_lite0_recognises_real_animals(lite0_bundle: Path, crops_dir: Path) -> None:
    """ImageNet Lite0 on real MegaDetector crops: an elephant and a baboon are named as such."""
    from ct_infer.data import load_crop
    from ct_infer.predictor import Predictor, load_classifier

    predictor = Predictor(load_classifier(lite0_bundle), device="cpu")
    files = {
        "elephant": "snapshot_kruger_KRU_S1_25_25_R1_KRU_S1_25_R1_IMAG0012.JPG___crop00_v5a.jpg",
        "baboon": "snapshot_enonkishu_ENO_S1_B05_B05_R2_ENO_S1_B05_R2_IMAG0624.JPG___crop00_v5a.jpg",
    }
    prep = predictor.classifier.preprocessing
    pixels = torch.from_numpy(np.stack([load_crop(crops_dir / f, prep) for f in files.values()]))
    top = predictor.probabilities(pixels).argmax(axis=1)
    labels = predictor.classifier.labels
    assert labels[top[0]].split(" ", 1)[1] in {"tusker", "African elephant", "Indian elephant"}
    assert labels[top[1]].split(" ", 1)[1] == "baboon"


def test_fine_tune_from_bundle_keeps_body_and_resets_head(
    tiny_bundle_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from ct_infer.bundle import load_bundle

    source = tiny_bundle_factory("source", labels=["a", "b", "c"], seed=3)
    old = load_bundle(source).state_dict
    built = build_backbone("timm:test_efficientnet", 5, str(source), {"input_size": 64})
    new = built.module.state_dict()
    assert torch.equal(new["conv_stem.weight"], old["conv_stem.weight"])
    assert new["classifier.weight"].shape[0] == 5
    with pytest.raises(CamtrapError, match="cannot start a resnet18"):
        build_backbone("resnet18", 5, str(source))
    assert json.dumps(built.options)
