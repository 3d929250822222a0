"""CodeFormer++: one shared encoder pass, I_F / I_G as CodeFormer at w = 1 / 0, DAM warp, TGRN."""

from __future__ import annotations

import pytest
import torch

from vidrestore.models import CodeFormer, CodeFormerPP
from vidrestore.models.dam import warp
from vidrestore.models.registry import build_model, get_spec
from vidrestore.models.seeded import fill_seeded
from vidrestore.models.tgrn import DynamicFusion, TextureAttention, TextureGuidedRestoration


@pytest.fixture
def net(tiny):
    return tiny("codeformer++")


def test_outputs_and_shapes(net, faces64):
    with torch.no_grad():
        out = net(faces64)
    assert out[0] is out.image
    for image in (out.image, out.faithful, out.generative, out.warped):
        assert image.shape == faces64.shape and torch.isfinite(image).all()
    assert out.flow.shape == (2, 2, 64, 64)
    assert (out.image - out.faithful).abs().max() > 1e-3  # TGRN does something


def test_faithful_and_generative_are_codeformer_at_w_1_and_0(net, faces64):
    plain = CodeFormer.from_config(net.config.codeformer).eval()
    plain.load_state_dict(net.codeformer.state_dict())
    with torch.no_grad():
        out = net(faces64)
        torch.testing.assert_close(out.faithful, plain(faces64, 1.0).image, rtol=0, atol=1e-5)
        torch.testing.assert_close(out.generative, plain(faces64, 0.0).image, rtol=0, atol=1e-5)


def test_encoder_and_transformer_run_once_decoder_once_on_2b(net, faces64):
    calls: dict[str, list[int]] = {"encoder": [], "transformer": [], "generator": []}
    hooks = [
        net.codeformer.encoder.blocks[0].register_forward_hook(
            lambda m, i, o: calls["encoder"].append(i[0].shape[0])),
        net.codeformer.ft_layers[0].register_forward_hook(
            lambda m, i, o: calls["transformer"].append(i[0].shape[0])),
        net.codeformer.generator.blocks[0].register_forward_hook(
            lambda m, i, o: calls["generator"].append(i[0].shape[0])),
    ]
    with torch.no_grad():
        net(faces64)
    for hook in hooks:
        hook.remove()
    assert calls == {"encoder": [2], "transformer": [2], "generator": [4]}


def test_warp_with_zero_flow_is_identity_and_shifts_by_the_flow():
    image = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(warp(image, torch.zeros(1, 2, 16, 20)), image, rtol=0, atol=1e-6)
    flow = torch.zeros(1, 2, 16, 20)
    flow[:, 0] = 2.0 / 20  # one pixel to the right, in normalised units
    flow[:, 1] = -2.0 / 16  # one pixel up
    shifted = warp(image, flow)
    torch.testing.assert_close(shifted[..., 1:, :-1], image[..., :-1, 1:], rtol=0, atol=1e-6)


def test_warp_keeps_pixel_accuracy_in_bf16():
    image = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0)).bfloat16()
    same = warp(image, torch.zeros(1, 2, 512, 512, dtype=torch.bfloat16))
    assert same.dtype == torch.bfloat16
    assert torch.equal(same, image)  # a bf16 grid would be off by up to a pixel near the edges


def test_fresh_dam_and_tgrn_are_exactly_the_identity_warp_and_a_zero_residual(faces64):
    net = build_model("codeformer++", tiny=True).eval()
    fill_seeded(net.codeformer)  # trained-like CodeFormer, freshly initialised DAM / TGRN
    with torch.no_grad():
        out = net(faces64)
    assert torch.equal(out.flow, torch.zeros_like(out.flow))
    torch.testing.assert_close(out.warped, out.generative, rtol=0, atol=1e-5)
    assert torch.equal(out.image, out.faithful)  # the zero output convolution adds exactly nothing
    assert net.untrained_parts() == ("DAM", "TGRN")
    fill_seeded(net)
    assert net.untrained_parts() == ()


def test_tgrn_has_three_levels_each_with_texture_attention_and_dynamic_fusion():
    tgrn = TextureGuidedRestoration()  # the default: three levels, 8×8 windows
    assert len(tgrn.fusions) == 3 and [f.attention.window for f in tgrn.fusions] == [8, 8, 8]
    fill_seeded(tgrn)
    gen = torch.Generator().manual_seed(3)
    faithful, warped = torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1, torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1
    with torch.no_grad():
        fused = tgrn.fused_features(faithful, warped)
        assert [tuple(f.shape[1:]) for f in fused] == [(32, 64, 64), (64, 32, 32), (128, 16, 16)]
        changed = tgrn.fused_features(faithful, warped.flip(-1))
    for level, (a, b) in enumerate(zip(fused, changed)):  # every level takes texture in
        assert (a - b).abs().max() > 1e-4, level


def test_texture_attention_stays_inside_its_windows():
    attention = TextureAttention(32, heads=2, window=4)
    fill_seeded(attention)
    content, texture = torch.randn(1, 32, 16, 16), torch.randn(1, 32, 16, 16)
    swapped = texture.clone()  # swap a pixel of window (0, 0) with one of window (2, 2):
    swapped[..., 1, 1], swapped[..., 9, 9] = texture[..., 9, 9], texture[..., 1, 1]  # same statistics
    with torch.no_grad():
        diff = (attention(content, texture) - attention(content, swapped)).abs().amax(dim=1)[0]
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[0:4, 0:4] = inside[8:12, 8:12] = True
    assert diff[inside].max() > 1e-4 and diff[~inside].max() < 1e-6


def test_dynamic_fusion_gates_between_content_and_texture():
    fusion = DynamicFusion(32, heads=2, window=4)
    fill_seeded(fusion)
    content, texture = torch.randn(1, 32, 8, 8), torch.randn(1, 32, 8, 8)
    with torch.no_grad():
        attended = fusion.attention(content, texture)
        for bias, expected in ((-1e4, content), (1e4, attended)):  # gate shut / open
            torch.nn.init.zeros_(fusion.gate.weight)
            torch.nn.init.constant_(fusion.gate.bias, bias)
            torch.testing.assert_close(fusion(content, texture), expected, rtol=0, atol=1e-5)


def test_texture_comes_from_the_warped_image(net, faces64):
    with torch.no_grad():
        faithful = torch.tanh(faces64)
        a = net.tgrn(faithful, faces64)
        b = net.tgrn(faithful, faces64.flip(-1))
    assert (a - b).abs().max() > 1e-4


def test_gradients_reach_dam_and_tgrn(net, faces64):
    net.train()
    net(faces64).image.square().mean().backward()
    for name, param in net.named_parameters():
        if name.startswith(("dam.", "tgrn.")):
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert net.codeformer.fuse_convs_dict["32"].scale[0].weight.grad.abs().sum() > 0


def test_official_codeformer_weights_load_into_the_codeformer_part(faces64):
    codeformer = fill_seeded(CodeFormer.from_config(get_spec("codeformer").tiny_config), seed=9)
    net = CodeFormerPP(get_spec("codeformer++").tiny_config).eval()
    report = net.load_codeformer_state_dict(codeformer.state_dict())
    assert report.loaded == len(codeformer.state_dict())
    assert report.untrained and all(k.startswith(("dam.", "tgrn.")) for k in report.untrained)
    with torch.no_grad():
        torch.testing.assert_close(net(faces64).faithful, codeformer(faces64, 1.0).image, rtol=0, atol=1e-5)
