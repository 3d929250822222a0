"""Half precision: the known fp16 traps (AdaIN variance, attention scores) and bf16 / fp16 runs."""

from __future__ import annotations

import pytest
import torch

from vidrestore.models import build_model, model_names
from vidrestore.models.fusion import adaptive_instance_normalization, calc_mean_std
from vidrestore.models.seeded import fill_seeded
from vidrestore.models.vqgan_blocks import AttnBlock


def call(net, name, x, w=0.7):
    if name == "id-codeformer":
        identity = torch.randn(x.shape[0], 512, generator=torch.Generator().manual_seed(2))
        return net(x, identity.to(x.dtype), w)
    return net(x) if name == "codeformer++" else net(x, w)


def test_adain_statistics_do_not_overflow_in_fp16():
    gen = torch.Generator().manual_seed(0)
    content = torch.randn(2, 8, 16, 16, generator=gen)
    style = torch.randn(2, 8, 16, 16, generator=gen) * 800 + 300  # variance ≈ 6.4e5 > fp16 max
    naive_var = style.half().flatten(2).var(dim=2)
    assert not torch.isfinite(naive_var).all()  # the trap: the variance itself overflows fp16
    out = adaptive_instance_normalization(content.half(), style.half())
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    expected = adaptive_instance_normalization(content.double(), style.double())
    torch.testing.assert_close(out.double(), expected, rtol=2e-3, atol=1.0)
    mean, std = calc_mean_std(style.half())
    assert mean.dtype == std.dtype == torch.float32


def test_attention_scores_do_not_overflow_in_fp16():
    torch.manual_seed(0)
    block = AttnBlock(64)
    with torch.no_grad():  # q·kᵀ reaches ~3e5 before the 1/√C scale: inf in a naive fp16 bmm
        block.q.weight.mul_(150)
        block.k.weight.mul_(150)
    x = torch.randn(1, 64, 16, 16)
    with torch.no_grad():
        expected = block(x)
        out = block.half()(x.half())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), expected, rtol=0, atol=0.02)


def test_tiny_codeformer_in_bf16_stays_close_to_fp32(faces64):
    net32 = fill_seeded(build_model("codeformer", tiny=True))
    net16 = fill_seeded(build_model("codeformer", tiny=True)).to(torch.bfloat16)
    x16 = faces64.bfloat16()
    with torch.no_grad():
        ref = net32(faces64, 0.7)
        out = net16(x16, 0.7)
        assert torch.isfinite(out.image).all() and out.image.dtype == torch.bfloat16
        # The code choice may flip where two logits are closer than bf16 resolution ...
        agree = (out.logits.argmax(-1) == ref.logits.argmax(-1)).float().mean().item()
        assert agree > 0.9
        torch.testing.assert_close(out.logits.float(), ref.logits, rtol=0, atol=0.1)
        # ... so the decoder is compared on the same codes.
        enc32, enc16 = net32.encode(faces64), net16.encode(x16)
        codes = ref.logits.argmax(-1)
        quant32 = adaptive_instance_normalization(net32.codes_to_features(codes), enc32.lq_feat)
        quant16 = adaptive_instance_normalization(net16.codes_to_features(codes), enc16.lq_feat)
        image32 = net32.decode(quant32, enc32.skips, 0.7)
        image16 = net16.decode(quant16, enc16.skips, 0.7)
    error = (image16.float() - image32).abs()
    assert error.mean() < 0.05 and error.max() < 0.5


def test_tiny_codeformer_runs_in_fp16_on_cpu(faces64):
    net32 = fill_seeded(build_model("codeformer", tiny=True))
    net16 = fill_seeded(build_model("codeformer", tiny=True)).half()
    with torch.no_grad():
        ref = net32(faces64[:1], torch.tensor([0.7]))
        out = net16(faces64[:1].half(), torch.tensor([0.7]))
    assert out.image.dtype == torch.float16 and torch.isfinite(out.image).all()
    assert torch.equal(out.logits.argmax(-1), ref.logits.argmax(-1))  # fp16 keeps these codes
    torch.testing.assert_close(out.image.float(), ref.image, rtol=0, atol=0.05)


@pytest.mark.parametrize("name", model_names())
def test_every_model_gives_finite_bf16_output(name, faces64):
    net = fill_seeded(build_model(name, tiny=True)).to(torch.bfloat16)
    with torch.no_grad():
        out = call(net, name, faces64.bfloat16())
    assert out[0].dtype == torch.bfloat16 and torch.isfinite(out[0]).all()
    assert out[0].float().abs().mean() > 0.05  # not a collapsed (all-zero) image
