"""CodeFormer behaviour on the tiny configuration: the fidelity weight, the training API, gradients."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from vidrestore.errors import ConfigError, UsageError
from vidrestore.models import CodeFormer, CodeFormerConfig, VQAutoEncoder
from vidrestore.models.registry import TINY_CODEFORMER
from vidrestore.models.seeded import fill_seeded


def tiny_kwargs(**changes):
    return {**asdict(TINY_CODEFORMER), **changes}


@pytest.fixture
def net(tiny):
    return tiny("codeformer")


def restore(net, x, w):
    with torch.no_grad():
        return net(x, w).image


def test_output_is_an_image_and_w_changes_it(net, faces64):
    out = net(faces64, 0.5)
    assert out.image.shape == faces64.shape and out[0] is out.image
    assert out.logits.shape == (2, 256, TINY_CODEFORMER.codebook_size)
    assert out.lq_feat.shape == (2, TINY_CODEFORMER.emb_dim, 16, 16)
    assert torch.isfinite(out.image).all()
    assert (restore(net, faces64, 0.0) - restore(net, faces64, 1.0)).abs().max() > 1e-2


@pytest.mark.parametrize("w", [0.0, 0.7, 1.3])
def test_w_as_tensor_equals_w_as_float(net, faces64, w):
    by_float = restore(net, faces64, w)
    torch.testing.assert_close(restore(net, faces64, torch.tensor(w)), by_float, rtol=0, atol=1e-6)
    torch.testing.assert_close(restore(net, faces64, torch.full((2,), w)), by_float, rtol=0, atol=1e-6)


def test_per_sample_w_equals_separate_calls(net, faces64):
    batched = restore(net, faces64, torch.tensor([0.0, 0.8]))
    torch.testing.assert_close(batched[:1], restore(net, faces64[:1], 0.0), rtol=0, atol=1e-5)
    torch.testing.assert_close(batched[1:], restore(net, faces64[1:], 0.8), rtol=0, atol=1e-5)


def test_training_pieces_compose_to_forward(net, faces64):
    with torch.no_grad():
        out = net(faces64, 0.6, adain=False)
        logits, lq_feat = net.code_only(faces64)
        enc = net.encode(faces64)
        quant = net.codes_to_features(logits.argmax(-1))
        image = net.decode(quant, enc.skips, 0.6)
    torch.testing.assert_close(logits, out.logits)
    torch.testing.assert_close(lq_feat, out.lq_feat)
    torch.testing.assert_close(image, out.image)
    assert set(enc.skips) == {"32", "64"}
    assert enc.skips["32"].shape == (2, 32, 32, 32)


def test_adain_gives_codes_the_encoder_statistics(net, faces64):
    with torch.no_grad():
        logits, lq_feat = net.code_only(faces64)
        quant = net.best_code_features(logits, lq_feat, adain=True)
    torch.testing.assert_close(quant.mean((2, 3)), lq_feat.mean((2, 3)), rtol=0, atol=1e-4)
    torch.testing.assert_close(quant.std((2, 3)), lq_feat.std((2, 3)), rtol=1e-3, atol=1e-4)


def test_gradients_reach_the_trainable_parameters_only(faces64):
    net = fill_seeded(CodeFormer.from_config(TINY_CODEFORMER)).train()
    out = net(faces64, 0.7, adain=False)
    targets = torch.randint(0, TINY_CODEFORMER.codebook_size, out.logits.shape[:2])
    loss = out.image.abs().mean() + F.cross_entropy(out.logits.transpose(1, 2), targets)
    loss.backward()
    for name, param in net.named_parameters():
        frozen = name.startswith(("quantize.", "generator."))  # official fix_modules
        assert param.requires_grad is not frozen, name
        if frozen:
            assert param.grad is None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_without_fixed_modules_the_generator_trains(faces64):
    net = CodeFormer(**tiny_kwargs(fix_modules=()))
    net(faces64, 1.0).image.mean().backward()
    assert all(p.grad is not None for p in net.generator.parameters())


def test_stage1_vqgan_reconstructs_and_reports_codes(faces64):
    cfg = TINY_CODEFORMER
    vq = VQAutoEncoder(cfg.img_size, cfg.nf, cfg.ch_mult, "nearest", cfg.res_blocks,
                       cfg.attn_resolutions, cfg.codebook_size, cfg.emb_dim)
    out = vq(faces64)
    assert out.image.shape == faces64.shape
    assert out.stats.indices.shape == (2, 256) and out.stats.indices.max() < cfg.codebook_size
    assert 1.0 <= out.stats.perplexity.item() <= cfg.codebook_size
    (out.image.mean() + out.codebook_loss).backward()
    assert vq.quantize.embedding.weight.grad.abs().sum() > 0  # codebook loss trains the codes
    assert vq.encoder.blocks[0].weight.grad.abs().sum() > 0  # straight-through estimator


def test_wrong_input_size_and_bad_configs_are_typed_errors(net):
    with pytest.raises(UsageError, match="64×64"):
        net(torch.zeros(1, 3, 32, 32), 0.5)
    with pytest.raises(ConfigError, match="latent_size"):
        CodeFormer(**tiny_kwargs(latent_size=100))
    with pytest.raises(ConfigError, match="connect_list"):
        CodeFormer(**tiny_kwargs(connect_list=("48",)))
    with pytest.raises(ConfigError, match="multiples of 32"):
        CodeFormer(**tiny_kwargs(nf=8))


def test_config_round_trips_through_the_constructor():
    net = CodeFormer.from_config(TINY_CODEFORMER)
    assert net.config == TINY_CODEFORMER
    assert CodeFormer().config == CodeFormerConfig()
