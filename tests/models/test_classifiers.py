import json
import re

import pytest
import torch
from torch import nn

from cfx.errors import CheckpointError
from cfx.models.classifiers import (
    BrainCNN,
    BrainCNNConfig,
    BrainOracle,
    BrainOracleConfig,
    BrainSegmenter,
    BrainSegmenterConfig,
)
from cfx.training.init import reset_parameters


def _images(b: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 1, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    reset_parameters(model, torch.Generator().manual_seed(seed))
    # non-trivial norm parameters, so the round trip covers them too
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.add_(0.1)
                m.bias.sub_(0.05)
    return model.eval()


MODELS = [
    pytest.param(lambda: BrainCNN(), (2,), id="cnn"),
    pytest.param(lambda: BrainOracle(), (2,), id="oracle"),
    pytest.param(lambda: BrainSegmenter(), (1, 64, 64), id="segmenter"),
]


@pytest.mark.parametrize(("make", "out_shape"), MODELS)
def test_output_shape_dtype_and_size(make, out_shape):
    model = make().eval()
    with torch.no_grad():
        out = model(_images(3))
    assert out.shape == (3, *out_shape)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    n_params = sum(p.numel() for p in model.parameters())
    assert 20_000 < n_params < 400_000


@pytest.mark.parametrize(("make", "out_shape"), MODELS)
def test_outputs_do_not_depend_on_the_batch(make, out_shape):
    # no batch statistics: an image scores the same alone or in a batch, in train mode too
    model = _seeded(make()).train()
    x = _images(4)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("cls", "config"),
    [
        (BrainCNN, BrainCNNConfig(width=8, blocks=3)),
        (BrainOracle, BrainOracleConfig(width=8, num_classes=3)),
        (BrainSegmenter, BrainSegmenterConfig(width=8)),
        (BrainCNN, BrainCNNConfig(width=4, image_size=(48, 32))),  # JSON's list -> a tuple
        (BrainSegmenter, BrainSegmenterConfig(width=4, image_size=(32, 32))),
    ],
)
def test_round_trip_reproduces_outputs_exactly(cls, config, tmp_path):
    model = _seeded(cls(config))
    folder = model.save_pretrained(tmp_path / "m")
    assert json.loads((folder / "config.json").read_text())["_class_name"] == cls.__name__
    loaded = cls.from_pretrained(folder)
    assert loaded.config == config
    assert not loaded.training
    x = _images(3, seed=1)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_loading_with_the_wrong_class_is_refused(tmp_path):
    folder = BrainCNN().save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match="holds a BrainCNN, not a BrainOracle"):
        BrainOracle.from_pretrained(folder)


def test_cnn_layout_for_grad_cam_and_relu_swapping():
    model = BrainCNN().eval()
    captured = {}
    model.features[-1].register_forward_hook(lambda m, i, o: captured.setdefault("maps", o))
    with torch.no_grad():
        logits = model(_images(2))
    assert captured["maps"].shape == (2, 128, 8, 8)  # last conv block: 8x8 maps for Grad-CAM
    last_conv = [m for m in model.features[-1] if isinstance(m, nn.Conv2d)]
    assert len(last_conv) == 1
    # the head is only pooling + linear, so logits are linear in the pooled last-block maps
    pooled = captured["maps"].mean((2, 3))
    torch.testing.assert_close(logits, model.head[-1](pooled))
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 4 and not any(r.inplace for r in relus)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_oracle_features_are_the_penultimate_layer():
    model = _seeded(BrainOracle())
    x = _images(5)
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
    assert feats.shape == (5, model.feature_dim) == (5, 96)
    torch.testing.assert_close(logits, model.classifier(feats))


def test_architectures_differ():
    cnn_layers = {type(m) for m in BrainCNN().modules()}
    oracle_layers = {type(m) for m in BrainOracle().modules()}
    assert nn.ReLU in cnn_layers and nn.ReLU not in oracle_layers
    assert nn.GELU in oracle_layers and nn.MaxPool2d not in oracle_layers


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BrainCNNConfig(width=0), "`width` must be an int >= 1, got 0"),
        (lambda: BrainCNNConfig(num_classes=1), "`num_classes` must be at least 2, got 1"),
        (lambda: BrainCNNConfig(blocks=7), "`blocks` must be at most 6"),
        (lambda: BrainOracleConfig(channels=-1), "`channels` must be an int >= 1, got -1"),
        (lambda: BrainCNNConfig(image_size=64), "`image_size` must be None or (H, W), two"),
        (lambda: BrainOracleConfig(image_size=(64, 0)), "got (64, 0)"),
        (lambda: BrainCNNConfig(image_size=[64, 64.0]), "got (64, 64.0)"),
        (lambda: BrainSegmenterConfig(image_size=(True, 64)), "got (True, 64)"),
    ],
)
def test_bad_configs_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_a_fractional_or_true_width_is_a_type_error():
    """BrainGANConfig(width=True) passed as a width of 1 (bools were not excluded there)."""
    from cfx.models.brain_gan import BrainGANConfig

    with pytest.raises(TypeError, match=re.escape("`width` must be an int >= 1, got 2.5")):
        BrainSegmenterConfig(width=2.5)
    with pytest.raises(TypeError, match=re.escape("`width` must be an int >= 1, got True")):
        BrainGANConfig(width=True)
    # a string 64 was refused as "`image_size` must be 64, got 64"; 64.0 was taken
    for size in ("64", 64.0, True):
        with pytest.raises(
            TypeError, match=re.escape(f"`image_size` must be an int >= 1, got {size!r}")
        ):
            BrainGANConfig(image_size=size)
    with pytest.raises(ValueError, match=re.escape("`image_size` must be 64, got 32")):
        BrainGANConfig(image_size=32)


@pytest.mark.parametrize("width", [3, 6, 12, 20])
def test_a_width_groupnorm_cannot_split_is_refused_with_the_config(width):
    """A width of 12 met PyTorch's "num_channels (12) must be divisible by num_groups (8)"
    when the model was built (after `cfx train` had read the data); 3 and 6 failed at a later
    layer, whose channels had doubled past 8."""
    from cfx.models.brain_gan import BrainGANConfig

    want = rf"`width` must give layers of channels GroupNorm can split.*got {width}, whose"
    for config in (BrainCNNConfig, BrainOracleConfig, BrainSegmenterConfig):
        with pytest.raises(ValueError, match=want):
            config(width=width)
    with pytest.raises(ValueError, match=want if width % 2 == 0 else "must be even"):
        BrainGANConfig(width=width)
    for ok in (1, 2, 4, 8, 24):  # every layer builds
        BrainCNN(BrainCNNConfig(width=ok))
    # a shallow model whose layers stay under 8 channels builds with any width, as before
    BrainCNN(BrainCNNConfig(width=6, blocks=1))
    BrainCNN(BrainCNNConfig(width=3, blocks=2))


def test_an_image_size_of_three_numbers_is_refused():
    with pytest.raises(ValueError, match=re.escape("got (64, 64, 3)")):
        BrainCNNConfig(image_size=(64, 64, 3))


def test_the_segmenter_names_a_size_its_levels_cannot_meet_at():
    """62 x 62 failed inside torch.cat ('Sizes of tensors must match ... 30 but got 31'),
    against a docstring saying the architecture takes any size."""
    seg = BrainSegmenter(BrainSegmenterConfig(width=8)).eval()
    assert seg(torch.zeros(1, 1, 60, 68)).shape == (1, 1, 60, 68)
    with pytest.raises(ValueError, match=r"divisible by 4 .* got 62x62"):
        seg(torch.zeros(1, 1, 62, 62))
