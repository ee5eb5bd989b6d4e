from __future__ import annotations

import pytest
import torch

from ct_io.errors import PluginError
from ct_io.options import ConfigError
from ct_train.losses import build_loss, class_balanced_weights, get_loss, list_losses

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]])
TARGETS = torch.tensor([0, 1, 2])


def test_builtins_are_registered_by_the_ct_train_plugin() -> None:
    names = {r.name: r.distribution for r in list_losses()}
    assert {"cross_entropy", "label_smoothing", "focal", "class_balanced"} <= set(names)
    assert names["focal"] == "ct-train"


def test_cross_entropy_per_example() -> None:
    loss = build_loss("cross_entropy", {}, 3, [1, 1, 1])(LOGITS, TARGETS)
    assert loss.shape == (3,)
    assert torch.allclose(
        loss, torch.nn.functional.cross_entropy(LOGITS, TARGETS, reduction="none")
    )


def test_label_smoothing_raises_loss_of_confident_right_answers() -> None:
    plain = build_loss("cross_entropy", {}, 3, [1, 1, 1])(LOGITS, TARGETS)
    smooth = build_loss("label_smoothing", {"label_smoothing": 0.2}, 3, [1, 1, 1])(LOGITS, TARGETS)
    assert smooth[0] > plain[0]


def test_focal_down_weights_easy_examples() -> None:
    ce = build_loss("cross_entropy", {}, 3, [1, 1, 1])(LOGITS, TARGETS)
    focal = build_loss("focal", {"gamma": 2.0}, 3, [1, 1, 1])(LOGITS, TARGETS)
    ratio = focal / ce
    assert ratio[0] < ratio[1]  # example 0 is easy (p≈0.79), example 1 hard
    same = build_loss("focal", {"gamma": 0.0}, 3, [1, 1, 1])(LOGITS, TARGETS)
    assert torch.allclose(same, ce)


def test_class_balanced_weights_rare_classes_up() -> None:
    w = class_balanced_weights([1000, 100, 10], beta=0.999)
    assert w[2] > w[1] > w[0] and float(w.sum()) == pytest.approx(3.0)
    loss = build_loss("class_balanced", {"beta": 0.999}, 3, [1000, 100, 10])(LOGITS, TARGETS)
    ce = torch.nn.functional.cross_entropy(LOGITS, TARGETS, reduction="none")
    assert torch.allclose(loss, ce * w)


def test_options_validated_against_the_registered_class() -> None:
    with pytest.raises(ConfigError, match="gama"):
        build_loss("focal", {"gama": 2}, 3, [1, 1, 1])
    with pytest.raises(ConfigError, match="one per label"):
        build_loss("focal", {"alpha": [1.0]}, 3, [1, 1, 1])
    with pytest.raises(PluginError, match="did you mean 'focal'"):
        get_loss("focla")


def test_third_party_loss_registers_like_a_builtin(pm) -> None:  # type: ignore[no-untyped-def]
    reg = get_loss("doubled_ce", pm)
    assert reg.distribution == "tests"
    loss = build_loss("doubled_ce", {"factor": 3.0}, 3, [1, 1, 1], pm)(LOGITS, TARGETS)
    ce = torch.nn.functional.cross_entropy(LOGITS, TARGETS, reduction="none")
    assert torch.allclose(loss, 3 * ce)
    with pytest.raises(PluginError):
        get_loss("doubled_ce")  # not installed in the default manager
