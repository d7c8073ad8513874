import math

import pytest
import torch
from scipy.stats import spearmanr

from cfx.metrics import (
    calibration_error,
    cout,
    flip_rate,
    increasing_steps,
    largest_step_share,
    lesion_area,
    localisation,
    monotonicity_spearman,
    spearman,
)


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (6, 11), generator=g).float()
    b = torch.randn(6, 11, generator=g)
    ours = spearman(a, b)
    ref = torch.tensor([spearmanr(a[i], b[i]).statistic for i in range(6)], dtype=torch.float32)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_spearman_of_map_sized_rows_matches_scipy():
    """Ranks came from comparing every pair of values (N**2 memory: 16M per 64 x 64 map);
    saliency's spearman, which ranks whole maps, now shares this one."""
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 50, (2, 4096), generator=g)  # integers: many ties
    b = torch.randn(2, 4096, generator=g, dtype=torch.float64)
    ours = spearman(a, b)
    assert ours.dtype == torch.float64
    ref = torch.tensor([spearmanr(a[i], b[i]).statistic for i in range(2)], dtype=torch.float64)
    assert torch.allclose(ours, ref, atol=1e-12)


def test_spearman_ranks_bools_and_refuses_complex():
    a = torch.tensor([[False, True, True, False]])
    b = torch.tensor([[0.0, 3.0, 2.0, 1.0]])
    ref = spearmanr(a[0].numpy(), b[0].numpy()).statistic
    assert spearman(a, b).item() == pytest.approx(ref, abs=1e-6)
    with pytest.raises(
        TypeError, match=r"^`b` must hold real numbers to rank, got torch.complex64"
    ):
        spearman(b, b.to(torch.complex64))


def test_monotonicity_and_calibration_known_answers():
    levels = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    perfect = torch.tensor([[0.05, 0.25, 0.5, 0.75, 0.97]])
    wobbly = torch.tensor([[0.05, 0.4, 0.3, 0.8, 0.9]])
    assert torch.allclose(monotonicity_spearman(perfect), torch.ones(1))
    assert torch.allclose(increasing_steps(perfect), torch.ones(1))
    assert torch.allclose(increasing_steps(wobbly), torch.tensor([0.75]))
    assert torch.allclose(calibration_error(perfect, levels), torch.tensor([0.03]), atol=1e-6)
    assert torch.allclose(calibration_error(wobbly, levels), torch.tensor([0.2]), atol=1e-6)
    assert flip_rate(torch.tensor([0.9, 0.4])).tolist() == [1.0, 0.0]


def test_localisation_shares():
    start = torch.zeros(2, 1, 8, 8)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, 2:4, 2:4] = True
    final = start.clone()
    final[0, :, 2:4, 2:4] = 1.0  # all change inside
    final[1, :, 2:4, 2:4] = 1.0
    final[1, :, 6:8, 6:8] = 1.0  # half outside (beyond the 1-pixel dilation)
    share = localisation(start, final, mask, dilation=1)
    assert torch.allclose(share, torch.tensor([1.0, 0.5]))
    assert torch.isnan(localisation(start, start, mask))[0]
    # no lesion to keep the change to: undefined (it was 0.0, which pulled means down)
    mask[1] = False
    assert localisation(start, final, mask)[0] == 1.0
    assert torch.isnan(localisation(start, final, mask)[1])


def test_calibration_error_takes_probabilities_only():
    """Logits gave an 'error' of 4.0, outside the metric's [0, 1]; flip_rate refused them."""
    levels = torch.tensor([0.0, 0.5, 1.0])
    assert calibration_error(torch.tensor([[0.1, 0.4, 0.9]]), levels).tolist() == pytest.approx(
        [0.1]
    )
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\] .*not logits"):
        calibration_error(torch.tensor([[-2.0, 0.0, 5.0]]), levels)
    with pytest.raises(ValueError, match=r"of dtype torch\.int64"):
        calibration_error(torch.tensor([[0, 0, 1]]), levels)


def test_cout_known_answer_on_a_pixel_count_classifier():
    """A classifier whose target log-odds grow with the number of bright pixels."""

    def f(x):
        s = (x > 0).flatten(1).float().sum(1) - 8.0
        return torch.stack([-s, s], 1) * 10  # saturated: class 1 iff > 8 bright pixels

    src = -torch.ones(1, 1, 4, 4)
    cf = torch.ones(1, 1, 4, 4)
    value = cout(f, src, cf, torch.tensor([1]), steps=16)
    # after k of 16 stages, k pixels are bright: class 1 loses for k <= 7 (stage 0, the
    # source, included), ties at k = 8 (score 0), wins for k >= 9. The trapezoid over the
    # 17 stages, as C3LT's reference code: (-1/2 + 7 * -1 + 0 + 7 * 1 + 1/2) / 16 = 0 (the
    # mean over stages 1..16, cfx's formula before, gave 1/16 for this symmetric curve)
    assert value.item() == pytest.approx(0.0, abs=1e-6)
    # a curve that is +1 from the first stage on: (-1/2 + 15 + 1/2) / 16
    early = cout(lambda x: f(x) + torch.tensor([[-1e3, 1e3]]) * (x > 0).any(), src, cf, 1, steps=16)
    assert early.item() == pytest.approx(15 / 16, abs=1e-6)


def test_summarise_flip_rate_follows_success_for_three_classes():
    """With three classes a last frame can be the argmax at a target probability below 0.5
    (0.45 against 0.30 and 0.25): the flip counts when ``success`` is given."""
    from cfx.metrics.trajectory import summarise

    probs = torch.tensor([[0.1, 0.3, 0.45], [0.1, 0.3, 0.9], [0.1, 0.2, 0.3]])
    levels = torch.tensor([0.0, 0.5, 1.0])
    frames = torch.zeros(3, 3, 1, 4, 4)
    source = torch.zeros(3, 1, 4, 4)
    success = torch.tensor([True, True, False])
    assert summarise(probs, levels, frames, source)["flip_rate"] == pytest.approx(1 / 3)
    with_success = summarise(probs, levels, frames, source, success=success)
    assert with_success["flip_rate"] == pytest.approx(2 / 3)


def test_inputs_of_the_wrong_shape_are_named():
    p = torch.rand(2, 4)
    with pytest.raises(ValueError, match=r"`levels` must be \(4,\) or \(2, 4\).*got \(2,\)"):
        calibration_error(p, torch.tensor([0.0, 1.0]))  # broadcast silently before
    with pytest.raises(ValueError, match=r"`probs` must be a tensor \(B, T\+1\)"):
        monotonicity_spearman(p[0])
    with pytest.raises(ValueError, match=r"`final_probs` must be a tensor \(B,\)"):
        flip_rate(p)
    start = torch.zeros(2, 1, 8, 8)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"`mask` must be \(2, 1, 8, 8\).*got \(2, 8, 8\)"):
        localisation(start, start + 1, mask[:, 0])  # scored against every mask before
    with pytest.raises(ValueError, match="`start` and `final`"):
        localisation(start[:1], start, mask)

    def f(x):
        return torch.zeros(x.shape[0], 2)

    # one class for every image, as the explainers take it (an int was refused before)
    assert torch.equal(cout(f, start, start, 1), cout(f, start, start, torch.tensor([1, 1])))
    with pytest.raises(ValueError, match=r"`target` must be an int or an integer tensor"):
        cout(f, start, start, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"`target` must be a class index in \[0, 1\], got 5"):
        cout(f, start, start, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="`steps`"):
        cout(f, start, start, torch.tensor([0, 1]), steps=0)


def test_per_image_levels_and_nonzero_masks():
    probs = torch.tensor([[0.1, 0.5, 0.9], [0.95, 0.97, 0.99]])
    per_image = torch.tensor([[0.0, 0.5, 1.0], [0.95, 0.97, 0.99]])
    assert torch.allclose(calibration_error(probs, per_image), torch.tensor([0.1, 0.0]))
    start = torch.zeros(1, 1, 8, 8)
    final = start.clone()
    final[0, :, 0, 0] = 1.0
    final[0, :, 7, 7] = 1.0
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 0, 0] = 255.0  # an 8-bit mask: inside, not 255 times inside
    assert localisation(start, final, mask, dilation=0).item() == pytest.approx(0.5)


def test_nan_probabilities_give_nan_not_zero_and_dtype_follows():
    nan = float("nan")
    assert torch.isnan(flip_rate(torch.tensor([nan, 0.9])))[0]
    assert flip_rate(torch.tensor([nan, 0.9]))[1] == 1.0
    rows = torch.tensor([[0.1, nan, 0.3], [0.1, 0.2, 0.3]], dtype=torch.float64)
    rho, inc = monotonicity_spearman(rows), increasing_steps(rows)
    assert torch.isnan(rho[0]) and rho[1] == 1.0 and rho.dtype == torch.float64
    assert torch.isnan(inc[0]) and inc[1] == 1.0 and inc.dtype == torch.float64


def test_cout_and_lesion_area_leave_a_training_model_as_it_was():
    """Both ran the user's model as it was: dropout made COUT random and a BatchNorm's
    running statistics moved with every call."""
    from cfx.metrics import lesion_area

    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1),
        torch.nn.BatchNorm2d(2),
        torch.nn.Dropout(0.5),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    src = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    cf = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    tgt = torch.ones(4, dtype=torch.long)
    first, second = cout(model, src, cf, tgt), cout(model, src, cf, tgt)
    assert torch.equal(first, second)
    segmenter = torch.nn.Sequential(model[0], model[1], torch.nn.Conv2d(2, 1, 1))  # one logit
    lesion_area(segmenter, torch.stack([src, cf], 1))
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_localisation_and_cout_check_their_options_and_classifier():
    start = torch.zeros(2, 1, 8, 8)
    final = start.clone()
    final[:, :, 2, 2] = 0.5
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match="`dilation` must be an int >= 0, got -1"):
        localisation(start, final, mask, dilation=-1)
    with pytest.raises(TypeError, match="`dilation` must be an int"):
        localisation(start, final, mask, dilation=1.5)
    # a classifier returning one score per image, not (B, K) logits: named, not an IndexError
    with pytest.raises(ValueError, match=r"`classifier` returns one logit per image.*TwoLogits"):
        cout(lambda x: x.flatten(1).sum(1), start, final, torch.tensor([0, 1]))
    # RGB images for a one-channel model: PyTorch's conv error names neither; cfx names both
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    conv(start)  # materialise the lazy layer on the shape the model was built for
    rgb = start.expand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"`classifier` failed on `source` shaped \(3, 8, 8\)"):
        cout(conv, rgb, rgb + 0.1, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"`segmenter` failed on `frames` shaped \(3, 8, 8\)"):
        lesion_area(torch.nn.Conv2d(1, 1, 3, padding=1), rgb[:, None])
    # double-precision images for float32 models: the message names the argument, not `x`
    wide = start.double()
    with pytest.raises(TypeError, match=r"^`source` is torch.float64 on cpu but the classifier"):
        cout(conv, wide, wide + 0.1, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match=r"^`frames` is torch.float64 on cpu but the segmenter"):
        lesion_area(torch.nn.Conv2d(1, 1, 3, padding=1), wide[:, None])


def test_logits_passed_for_probabilities_are_named():
    """flip_rate(logits) once thresholded logits at 0.5 without a word."""
    with pytest.raises(ValueError, match=r"`final_probs` must be probabilities in \[0, 1\]"):
        flip_rate(torch.tensor([2.5, -1.0]))
    assert flip_rate(torch.tensor([float("nan"), 1.0])).isnan().tolist() == [True, False]


def test_lesion_area_refuses_a_classifier_for_a_segmenter():
    """A classifier's (N, K) logits were counted as 'lesion pixels' without a word."""
    frames = torch.zeros(2, 3, 1, 8, 8)
    with pytest.raises(ValueError, match=r"mask logit per pixel \(N, 1, 8, 8\), got \(6, 2\)"):
        lesion_area(lambda x: torch.ones(x.shape[0], 2), frames)
    seg = lesion_area(lambda x: x[:, :1] + 1.0, frames)  # every pixel "lesion"
    assert seg.tolist() == [[64.0] * 3] * 2


def test_summarise_scores_generated_frames_beyond_the_image_range():
    """A user's generator without tanh may overshoot [-1, 1] far; its frames are scored as
    they are (only a direct psnr/ssim/l1 call refuses [0, 255]-scale images)."""
    from cfx.metrics import psnr
    from cfx.metrics.trajectory import summarise

    source = torch.zeros(2, 1, 8, 8)
    frames = torch.zeros(2, 3, 1, 8, 8)
    frames[:, -1] = 5.0
    probs = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.5, 0.8]])
    s = summarise(probs, torch.tensor([0.0, 0.5, 1.0]), frames, source)
    assert s["l1_to_source"] == pytest.approx(5.0)
    assert s["psnr_to_source"] == pytest.approx(10 * math.log10(4 / 25), abs=1e-4)
    with pytest.raises(ValueError, match=r"must have values in \[-1, 1\]"):
        psnr(frames[:, -1], source)


def test_cout_inserts_the_largest_change_first():
    # f reads one pixel, the one the counterfactual changes most (by 2; the others by 0.5).
    # 4 pixels in 4 stages: stage 1 inserts that pixel, so stages 1..4 score p(1) - p(0) at
    # logits (-10, 10), tanh(10), and the source (stage 0) -tanh(10): the trapezoid is
    # (-t / 2 + 3 t + t / 2) / 4 = 3 t / 4 (inserted last, stages 1..3 would score -t).
    def f(x):
        s = 10 * x[:, 0, 0, 0]
        return torch.stack([-s, s], 1)

    src = -torch.ones(1, 1, 2, 2)
    cf = torch.full((1, 1, 2, 2), -0.5)
    cf[0, 0, 0, 0] = 1.0
    assert cout(f, src, cf, 1, steps=4).item() == pytest.approx(0.75 * math.tanh(10), abs=1e-6)


def test_cout_refuses_the_class_index_one_past_the_last():
    def f(x):
        return torch.zeros(x.shape[0], 2)

    s = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"class index in \[0, 1\], got 2"):
        cout(f, s, s, 2)


def test_localisation_dilation_known_answers():
    # two changed pixels, one inside the dilated mask and one at (7, 7) far outside: share 0.5
    # when the dilation reaches the first, 0 when it does not
    start = torch.zeros(1, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[0, 0, 2, 2] = True
    final = start.clone()
    final[0, 0, 2, 3] = 1.0  # 1 px from the mask
    final[0, 0, 7, 7] = 1.0
    assert localisation(start, final, mask, dilation=1).item() == pytest.approx(0.5)
    assert localisation(start, final, mask, dilation=0).item() == pytest.approx(0.0)
    final = start.clone()
    final[0, 0, 2, 5] = 1.0  # 3 px from the mask: inside the default dilation 3, not 2
    final[0, 0, 7, 7] = 1.0
    assert localisation(start, final, mask).item() == pytest.approx(0.5)
    assert localisation(start, final, mask, dilation=2).item() == pytest.approx(0.0)


def test_spearman_of_constant_input_is_zero_and_ties_do_not_climb():
    assert spearman(torch.ones(1, 5), torch.arange(5.0)[None]).item() == 0.0
    assert monotonicity_spearman(torch.tensor([[0.3, 0.3, 0.3]])).item() == 0.0
    # steps 0.1 -> 0.1 (a tie, not a climb) and 0.1 -> 0.2: one of two steps increases
    assert increasing_steps(torch.tensor([[0.1, 0.1, 0.2]])).item() == pytest.approx(0.5)


def test_flip_rate_of_exactly_one_half_is_not_a_flip():
    assert flip_rate(torch.tensor([0.5])).item() == 0.0  # a flip "exceeds 0.5"


def test_lesion_area_of_an_empty_segmentation_is_zero():
    def segmenter(x):
        return torch.zeros(x.shape[0], 1, 4, 4)  # logit 0 everywhere: no pixel > 0

    assert lesion_area(segmenter, torch.zeros(1, 2, 1, 4, 4)).tolist() == [[0.0, 0.0]]


def test_summarise_uses_frame0_oracle_last_frame_and_spearman():
    from cfx.metrics.trajectory import summarise

    source = torch.zeros(1, 1, 8, 8)
    frames = torch.zeros(1, 4, 1, 8, 8)
    frames[:, :, 0, 7, 7] = 1.0  # inversion error in every frame, G(z0) included
    frames[:, -1, 0, 2, 2] = 1.0  # the edit
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[0, 0, 2, 2] = True
    # localisation measures the last frame against frame 0, not against the source: the
    # inversion error at (7, 7) is in both, so the whole change is inside the mask
    probs = torch.tensor([[0.1, 0.3, 0.2, 0.4]])  # ranks 0, 2, 1, 3: rho = 1 - 6 * 2 / (4 * 15)
    oracle = torch.tensor([[0.1, 0.2, 0.3, 0.9]])  # the oracle's last frame is above 0.5
    s = summarise(probs, torch.linspace(0, 1, 4), frames, source, masks=mask, oracle_probs=oracle)
    assert s["localisation"] == pytest.approx(1.0)
    assert s["oracle_agreement"] == 1.0
    assert s["spearman_t_f"] == pytest.approx(0.8)
    assert s["increasing_steps"] == pytest.approx(2 / 3)  # 0.3 -> 0.2 is the one fall


def test_summarise_names_its_own_masks_argument():
    """Masks of the wrong shape were reported as `mask`, the inner function's name."""
    from cfx.metrics.trajectory import summarise

    probs = torch.tensor([[0.1, 0.6, 0.9]])
    frames = torch.zeros(1, 3, 1, 4, 4)
    with pytest.raises(ValueError, match=r"^`masks` must be \(1, 1, 4, 4\), one lesion mask"):
        summarise(
            probs, torch.tensor([0.0, 0.5, 1.0]), frames, frames[:, 0], masks=torch.ones(1, 4, 4)
        )


def test_summarise_refuses_masks_for_another_batch_with_channels_or_not_a_tensor():
    """One (1, H, W) mask per sequence: masks for three sequences of a batch of two, masks
    with three channels, or a numpy array are named as `masks` with the shape expected."""
    from cfx.metrics.trajectory import summarise

    probs = torch.tensor([[0.1, 0.6, 0.9], [0.2, 0.5, 0.95]])
    frames = torch.zeros(2, 3, 1, 4, 4)
    levels = torch.tensor([0.0, 0.5, 1.0])
    for masks in (torch.ones(3, 1, 4, 4), torch.ones(2, 3, 4, 4), torch.ones(2, 1, 4, 4).numpy()):
        with pytest.raises(ValueError, match=r"^`masks` must be \(2, 1, 4, 4\), one lesion mask"):
            summarise(probs, levels, frames, frames[:, 0], masks=masks)
    ok = summarise(probs, levels, frames, frames[:, 0], masks=torch.ones(2, 1, 4, 4))
    assert "localisation" in ok


def test_summarise_names_an_argument_of_the_wrong_shape():
    """Frames as (B, C, T+1, H, W), oracle probabilities as (B,) or a source of another batch
    failed inside a metric in torch's words; three frames for five probabilities passed."""
    from cfx.metrics.trajectory import summarise

    probs = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.5, 0.8]])
    levels = torch.tensor([0.0, 0.5, 1.0])
    frames = torch.zeros(2, 3, 1, 8, 8)
    source = torch.zeros(2, 1, 8, 8)
    assert summarise(probs, levels, frames, source)["n"] == 2
    cases = [
        ({"frames": frames.transpose(1, 2)}, r"`frames` must be \(2, 3, C, H, W\)"),
        ({"frames": frames[:, :2]}, r"one frame per probability of `probs` \(2, 3\)"),
        ({"source": source[:1]}, r"`source` must be \(2, 1, 8, 8\)"),
        ({"oracle_probs": probs[:, -1]}, r"`oracle_probs` must be \(2, 3\), as `probs`"),
    ]
    for change, match in cases:
        kwargs = {"frames": frames, "source": source} | change
        with pytest.raises(ValueError, match=match):
            summarise(probs, levels, **kwargs)


def test_oracle_agreement_along_path_counts_the_classifiers_target_frames():
    from cfx.metrics import oracle_agreement_along_path, summarise

    # path 0: the classifier crosses at frame 2 of 4 (frames 2, 3, 4 in the target), the
    # oracle only at frame 4: 1 of 3; path 1: the oracle agrees wherever the classifier is
    # in the target (frames 3, 4), and also at frame 1, which does not count: 2 of 2;
    # path 2: the classifier never reaches the target: undefined, not 0 or 1
    probs = torch.tensor(
        [[0.1, 0.3, 0.6, 0.8, 0.95], [0.1, 0.2, 0.4, 0.7, 0.9], [0.1, 0.2, 0.3, 0.4, 0.45]]
    )
    oracle = torch.tensor(
        [[0.0, 0.1, 0.2, 0.4, 0.9], [0.0, 0.6, 0.3, 0.8, 0.9], [0.9, 0.9, 0.9, 0.9, 0.9]]
    )
    got = oracle_agreement_along_path(probs, oracle)
    assert got[:2].tolist() == pytest.approx([1 / 3, 1.0])
    assert math.isnan(float(got[2]))
    # the last-frame reading calls all three paths agreed; the mean along the path skips
    # the path with no target frame
    frames = torch.zeros(3, 5, 1, 4, 4)
    s = summarise(probs, torch.linspace(0, 1, 5), frames, frames[:, 0], oracle_probs=oracle)
    assert s["oracle_agreement"] == 1.0
    assert s["oracle_agreement_along_path"] == pytest.approx((1 / 3 + 1) / 2)
    # a NaN probability gives NaN for that path only
    broken = probs.clone()
    broken[1, 2] = float("nan")
    assert math.isnan(float(oracle_agreement_along_path(broken, oracle)[1]))
    assert float(oracle_agreement_along_path(broken, oracle)[0]) == pytest.approx(1 / 3)


def test_oracle_agreement_along_path_names_bad_arguments():
    from cfx.metrics import oracle_agreement_along_path

    probs = torch.full((2, 3), 0.7)
    with pytest.raises(ValueError, match=r"`oracle_probs` must be \(2, 3\), as `probs`"):
        oracle_agreement_along_path(probs, torch.full((2, 4), 0.7))
    with pytest.raises(ValueError, match=r"`oracle_probs` must be probabilities in \[0, 1\]"):
        oracle_agreement_along_path(probs, torch.full((2, 3), 3.0))
    with pytest.raises(ValueError, match=r"`probs` must be a tensor \(B, T\+1\)"):
        oracle_agreement_along_path(torch.full((2,), 0.7), torch.full((2,), 0.7))


def test_largest_step_share_known_answers():
    """Frames of one pixel stepping by 1, 1 and 2: the last step makes 2 of 4 of the change.
    Even steps give 1/T; a path whose frames never change has no share (NaN). A user audit
    found a path jumping in its last step (half its change) reading spearman 1 and every step
    increasing: the probability's measures cannot see the image."""
    values = torch.tensor([[0.0, 1.0, 2.0, 4.0], [0.0, -1.0, -2.0, -3.0], [0.5, 0.5, 0.5, 0.5]])
    frames = values[:, :, None, None, None].expand(3, 4, 1, 2, 2)  # (B, T+1, C, H, W)
    share = largest_step_share(frames)
    assert share[:2].tolist() == [0.5, pytest.approx(1 / 3)]
    assert math.isnan(share[2])
    with pytest.raises(ValueError, match=r"`frames` must be \(B, T\+1, C, H, W\) with T >= 1"):
        largest_step_share(frames[:, :1])


def test_summarise_takes_success_as_a_list_or_array_and_refuses_integer_frames():
    """success=[True, ...] failed with "'list' object has no attribute 'shape'", and uint8
    frames with torch's "mean(): could not infer output dtype" (their differences wrap)."""
    import numpy as np

    from cfx.metrics.trajectory import largest_step_share, summarise

    probs = torch.tensor([[0.1, 0.6, 0.9], [0.2, 0.3, 0.4]])
    levels = torch.tensor([0.0, 0.5, 1.0])
    frames = torch.linspace(-1, 1, 2 * 3 * 16).view(2, 3, 1, 4, 4)
    source = frames[:, 0]
    want = summarise(probs, levels, frames, source, success=torch.tensor([True, False]))
    for success in ([True, False], np.array([True, False])):
        got = summarise(probs, levels, frames, source, success=success)
        assert got["flip_rate"] == want["flip_rate"] == 0.5
    with pytest.raises(TypeError, match="`frames` must be float images in"):
        largest_step_share((frames * 100 + 100).to(torch.uint8))


def _summarise_inputs():
    probs = torch.tensor([[0.1, 0.6, 0.9], [0.2, 0.3, 0.4]])
    levels = torch.tensor([0.0, 0.5, 1.0])
    frames = torch.linspace(-1, 1, 2 * 3 * 16).view(2, 3, 1, 4, 4)
    return probs, levels, frames


def test_summarise_scores_a_source_of_another_dtype_and_checks_its_range():
    """float32 frames beside a float64 source (an input loaded with numpy) failed inside
    SSIM's conv ('expected scalar type Double but found Float'); a [0, 255] source was scored
    as PSNR -37 dB without a word, and probabilities passed as `success` read as a flip share
    (session-53 audit)."""
    from cfx.metrics.trajectory import summarise

    probs, levels, frames = _summarise_inputs()
    source = -frames[:, 0]
    want = summarise(probs, levels, frames, source)
    got = summarise(probs, levels, frames, source.double())
    for key in ("l1_to_source", "ssim_to_source", "psnr_to_source"):
        assert got[key] == pytest.approx(want[key], rel=1e-5)  # float64 vs float32 sums
    with pytest.raises(
        ValueError, match=r"`source` must have values in \[-1, 1\].*raw pixel values"
    ):
        summarise(probs, levels, frames, (source + 1) * 127.5)
    with pytest.raises(ValueError, match=r"`success` must be flags \(bool or 0/1\)"):
        summarise(probs, levels, frames, source, success=torch.tensor([0.2, 0.9]))
    ones = summarise(probs, levels, frames, source, success=torch.tensor([1, 0]))
    assert ones["flip_rate"] == 0.5


def test_half_precision_localisation_and_lesion_area_are_the_float32_figures():
    """float16 sums of a 256 x 256 change overflowed: localisation read NaN (its docstring's
    'no change or empty mask'); lesion_area counted 2079 pixels as 2080."""
    start, final = -torch.ones(2, 3, 256, 256), torch.zeros(2, 3, 256, 256)
    mask = torch.zeros(2, 1, 256, 256, dtype=torch.bool)
    mask[:, :, :128] = True
    want = localisation(start, final, mask)
    got = localisation(start.half(), final.half(), mask)
    assert got.dtype == torch.float16
    assert torch.allclose(got.float(), want, atol=1e-3) and not bool(got.isnan().any())
    frames = -torch.ones(1, 1, 1, 64, 64)
    frames.view(-1)[:2079] = 1.0
    area = lesion_area(lambda x: x, frames.half())
    assert area.tolist() == [[2079.0]]


def test_lesion_area_refuses_a_two_class_segmenters_logits():
    """(N, 2, H, W) logits passed the (H, W) check and counted every pixel of both maps' union
    (64 of 64) as lesion."""
    frames = torch.zeros(2, 3, 1, 8, 8)
    with pytest.raises(ValueError, match=r"one mask logit per pixel \(N, 1, 8, 8\).*two-class"):
        lesion_area(lambda x: torch.cat([-x, x], 1), frames)


def test_calibration_error_refuses_levels_that_are_not_probabilities():
    probs = torch.tensor([[0.1, 0.5, 0.9]])
    assert float(calibration_error(probs, torch.tensor([0.0, 0.5, 1.0]))[0]) == pytest.approx(0.1)
    for bad in (torch.tensor([0.0, 5.0, 1.0]), torch.tensor([0.0, float("nan"), 1.0])):
        with pytest.raises(ValueError, match=r"`levels` must be probabilities in \[0, 1\]"):
            calibration_error(probs, bad)


def test_soft_masks_and_pixel_scale_images_are_refused():
    """A segmenter's sigmoid as the mask scored every change as inside it (1.0 for a change
    far from the lesion); [0, 255] frames or images were scored or segmented as they were
    (session-55 audit)."""
    from cfx.metrics.trajectory import summarise

    start = torch.zeros(1, 1, 8, 8) - 1
    final = start.clone()
    final[..., :2, :2] += 0.5  # a change in the corner, far from the lesion
    lesion = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    lesion[..., 5:, 5:] = True
    assert localisation(start, final, lesion, dilation=0).tolist() == [0.0]
    with pytest.raises(ValueError, match=r"`mask` must be bool or hold 0 and one other value"):
        localisation(start, final, torch.sigmoid(lesion.float() * 4 - 2), dilation=0)
    pixels = (final + 1) * 127.5
    with pytest.raises(ValueError, match=r"`final` must be images in \[-1, 1\] .* got values"):
        localisation(start, pixels, lesion)
    with pytest.raises(ValueError, match=r"`counterfactual` must be images in \[-1, 1\]"):
        cout(lambda x: torch.zeros(x.shape[0], 2), start, pixels, 1)
    with pytest.raises(ValueError, match=r"`frames` must be images in \[-1, 1\]"):
        lesion_area(lambda x: x[:, :1], pixels[:, None])
    probs, levels, frames = _summarise_inputs()
    with pytest.raises(ValueError, match=r"`frames` must be images in \[-1, 1\]"):
        summarise(probs, levels, (frames + 1) * 127.5, frames[:, 0])
