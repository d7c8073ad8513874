import torch
from torch import nn

from cfx.saliency._common import fast_model, masked_scores
from tests.saliency.toy import LinearModel, images, small_cnn


def test_fast_model_is_a_channels_last_copy_with_the_same_outputs():
    model = small_cnn()
    x = images(b=3, h=16, w=16)
    fast = fast_model(model, x[:1])
    assert fast is not model
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    # the user's model keeps its layout
    assert all(p.is_contiguous() for p in model.parameters())


def test_fast_model_falls_back_to_the_model():
    def plain(x):
        return x.flatten(1)[:, :2]

    assert fast_model(plain, images()) is plain

    class ViewNet(nn.Module):  # .view on a channels-last tensor raises: keep the original
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x).view(x.shape[0], -1)[:, :2]

    net = ViewNet()
    assert fast_model(net, images(h=8, w=8)) is net


def test_masked_scores_known_answer_and_pairs():
    model = LinearModel()
    x = images(b=2)
    base = torch.full_like(x, -1.0)
    masks = torch.stack([torch.ones(1, 8, 8), torch.zeros(1, 8, 8)])  # keep all, keep none
    target = torch.tensor([1, 1])
    scores = masked_scores(model, x, base, masks, 2, target, "logit", batch_size=3)
    with torch.no_grad():
        assert torch.allclose(scores[:, 0], model.score(x))
        assert torch.allclose(scores[:, 1], model.score(base))
    some = masked_scores(
        model, x, base, masks, 2, target, "logit", 3, pairs=(torch.tensor([1]), torch.tensor([0]))
    )
    assert torch.allclose(some, scores[1:, 0])
