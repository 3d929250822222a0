"""Loss networks and losses: weights only from the weights folder, the ArcFace crop, GAN,
registration (DAM learns), metric learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vidrestore.training.cli import main
from vidrestore.training.losses.gan import adaptive_weight, hinge_d_loss, hinge_g_loss
from vidrestore.training.losses.identity import (
    ARCFACE_SIZE,
    StandInEncoder,
    arcface_crops,
    build_identity,
)
from vidrestore.training.losses.metric import (
    anchor_positive,
    component_mask,
    metric_loss,
)
from vidrestore.training.losses.perceptual import (
    LPIPSDistance,
    StandInDistance,
    build_perceptual,
)
from vidrestore.training.losses.registration import flow_smoothness, local_ncc

from vidrestore.errors import MissingWeightsError, WeightsMismatchError
from vidrestore.faces.align import ARCFACE_TEMPLATE_112, similarity_lstsq, template
from vidrestore.models.dam import DeformableAlignment, warp
from vidrestore.weights import KNOWN_WEIGHTS, WeightStore


@pytest.fixture
def empty_store(tmp_path) -> WeightStore:
    return WeightStore(tmp_path / "weights", tmp_path / "cache", allow_download=False)


@pytest.mark.parametrize("which", ["perceptual", "identity"])
def test_missing_loss_weights_stop_with_the_file_and_its_url(empty_store, which):
    name = "vgg16" if which == "perceptual" else "arcface-ir-se50"
    with pytest.raises(MissingWeightsError) as info:
        if which == "perceptual":
            build_perceptual("vgg", empty_store, stand_in=False)
        else:
            build_identity(empty_store, stand_in=False)
    entry = KNOWN_WEIGHTS[name]
    assert entry.filename in str(info.value) and entry.url in str(info.value)


def test_a_real_stage_without_weights_exits_with_one_line(tmp_path, monkeypatch, capsys, smoke_root):
    monkeypatch.setenv("VIDRESTORE_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["vqgan", "--set", "network=tiny", "--set", f"data.root={smoke_root / 'faces'}",
                 "--set", f"output_dir={tmp_path}", "--set", f"weights_dir={tmp_path / 'none'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4 and len(err) == 1 and "vgg16-397923af.pth" in err[0] and "https://" in err[0]


def test_stand_ins_say_what_they_are(empty_store):
    lines: list[str] = []
    p = build_perceptual("vgg", empty_store, stand_in=True, log=lines.append)
    i = build_identity(empty_store, stand_in=True, log=lines.append)
    assert isinstance(p, StandInDistance) and isinstance(i, StandInEncoder) and p.is_stand_in and i.is_stand_in
    assert all("STAND-IN" in line for line in lines) and len(lines) == 2


def test_lpips_trunk_comes_from_the_weights_folder(tmp_path, alexnet_trunk_store):
    store = alexnet_trunk_store(tmp_path / "w")
    lpips = LPIPSDistance("alex", store.require("alexnet"))
    assert not any(p.requires_grad for p in lpips.parameters()) and not lpips.training
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    d = lpips(x, x)
    assert d.shape == (2,) and torch.allclose(d, torch.zeros(2), atol=1e-6)
    assert (lpips(x, x.flip(0)) > 0).all()
    trunk = torch.load(store.require("alexnet"), weights_only=True)
    assert torch.equal(lpips.lpips.net.slice1[0].weight, trunk["features.0.weight"])
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsMismatchError):
        LPIPSDistance("alex", tmp_path / "bad.pth")


@pytest.mark.parametrize("size", [512, 64])
def test_arcface_crop_puts_ffhq_landmarks_on_the_arcface_template(size):
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    expected = np.c_[template(size), np.ones(5)] @ similarity_lstsq(template(size), ARCFACE_TEMPLATE_112).T
    grid_y, grid_x = torch.meshgrid(torch.arange(112.0), torch.arange(112.0), indexing="ij")
    for (x, y), want in zip(template(size), expected):
        blob = torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (size / 60) ** 2))
        crop = arcface_crops(blob.expand(1, 3, size, size))[0, 0]
        assert crop.shape == (ARCFACE_SIZE, ARCFACE_SIZE)
        got = np.array([(crop * grid_x).sum() / crop.sum(), (crop * grid_y).sum() / crop.sum()])
        assert np.abs(got - want).max() < 0.5, (size, got, want)


def test_identity_loss_is_one_minus_cosine_and_differentiable():
    enc = StandInEncoder()
    faces = torch.rand(2, 3, 64, 64, requires_grad=True)
    target = enc(faces.detach())
    loss = enc.loss(faces, target)
    assert abs(loss.item()) < 1e-5
    enc.loss(faces, target.flip(0)).backward()
    assert faces.grad is not None and faces.grad.abs().sum() > 0


def test_hinge_losses_and_adaptive_weight():
    assert hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)).item() == 0
    assert hinge_d_loss(torch.zeros(4), torch.zeros(4)).item() == 2
    assert hinge_g_loss(torch.full((3,), 0.5)).item() == -0.5
    layer = torch.nn.Parameter(torch.ones(3))
    rec, gan = (layer * 4).sum(), (layer * 1).sum()
    assert torch.isclose(adaptive_weight(rec, gan, layer, max_weight=10), torch.tensor(4.0), rtol=1e-3)
    assert adaptive_weight((layer * 4).sum(), (layer * 1).sum(), layer, max_weight=1.0).item() == 1.0


def test_dam_learns_to_register_a_shifted_face(smoke_root):
    from vidrestore.training.data.datasets import read_face, to_tensor

    torch.manual_seed(0)
    faithful = to_tensor(read_face(sorted((smoke_root / "faces").glob("*.png"))[0], 64))[None]
    generative = faithful.roll(shifts=(2, -2), dims=(2, 3))  # the same face, 2 px off
    dam = DeformableAlignment(8, 3)
    opt = torch.optim.Adam(dam.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        warped, flow = dam(faithful, generative)
        loss = (1 - local_ncc(warped, faithful, 5)).mean() + 0.01 * flow_smoothness(flow).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    assert local_ncc(faithful, faithful).item() == pytest.approx(1.0, abs=1e-3)
    assert flow_smoothness(torch.zeros(1, 2, 8, 8)).item() == 0
    assert torch.allclose(warp(faithful, torch.zeros(1, 2, 64, 64)), faithful, atol=1e-5)


def test_metric_learning_pulls_the_anchor_to_the_positive():
    mask = component_mask(512)
    t = template(512).round().astype(int)
    assert all(mask[y, x] > 0.9 for x, y in t) and mask[5, 5] == 0 and mask[500, 256] < 0.05
    faithful, warped = torch.zeros(1, 3, 64, 64), torch.ones(1, 3, 64, 64)
    positive = anchor_positive(faithful, warped)
    assert 0 < positive.mean() < 1 and positive[0, 0, 0, 0] == 1  # texture (corners) from I_warp
    dist = lambda a, b: ((a - b) ** 2).mean((1, 2, 3))  # noqa: E731
    anchor = torch.zeros(2, 3, 8, 8, requires_grad=True)
    pos, neg = torch.full((2, 3, 8, 8), 0.1), torch.full((2, 3, 8, 8), 3.0)
    assert metric_loss(dist, anchor, pos, [neg], margin=0.1).item() == 0  # far enough already
    near = torch.full((2, 3, 8, 8), -0.1)
    loss = metric_loss(dist, anchor, pos, [neg, near], margin=0.1)  # the hardest negative counts
    assert loss.item() == pytest.approx(0.1)
    nce = metric_loss(dist, anchor, pos, [near], kind="infonce")
    nce.backward()
    step = anchor - anchor.grad
    assert dist(step, pos).mean() < dist(anchor, pos).mean()
