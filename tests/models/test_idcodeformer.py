"""ID-CodeFormer: exact CodeFormer before training, identity-driven once its new layers train."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from vidrestore.errors import UsageError, WeightsMismatchError
from vidrestore.models import CodeFormer, IDCodeFormer
from vidrestore.models.idcodeformer import NEW_LAYER_PREFIXES
from vidrestore.models.registry import TINY_CODEFORMER
from vidrestore.models.seeded import fill_seeded


def identities(batch: int, seed: int = 4) -> torch.Tensor:
    return torch.randn(batch, 512, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def pair():
    """A tiny CodeFormer with seeded weights and an IDCodeFormer loaded from its state dict."""
    codeformer = fill_seeded(CodeFormer.from_config(TINY_CODEFORMER))
    net = IDCodeFormer(**asdict(TINY_CODEFORMER)).eval()
    report = net.load_codeformer_state_dict(codeformer.state_dict())
    return codeformer, net, report


@pytest.mark.parametrize("w", [0.0, 0.7, torch.tensor([0.2, 1.0])])
def test_before_training_it_is_exactly_codeformer(pair, faces64, w):
    codeformer, net, _ = pair
    with torch.no_grad():
        expected = codeformer(faces64, w)
        got = net(faces64, identities(2), w)
    assert torch.equal(got.image, expected.image)
    assert torch.equal(got.logits, expected.logits)


def test_loading_codeformer_weights_reports_only_the_new_layers(pair):
    codeformer, net, report = pair
    new = sorted(k for k in net.state_dict() if k.startswith(NEW_LAYER_PREFIXES))
    assert list(report.untrained) == new and len(new) > 0
    assert report.loaded == len(codeformer.state_dict()) and not report.complete
    assert set(net.state_dict()) - set(new) == set(codeformer.state_dict())
    assert "untrained" in report.summary()


def test_loading_is_strict_everywhere_else(pair):
    codeformer, net, _ = pair
    state = codeformer.state_dict()
    without = {k: v for k, v in state.items() if k != "feat_emb.weight"}
    with pytest.raises(WeightsMismatchError, match="1 missing.*feat_emb.weight"):
        net.load_codeformer_state_dict(without)
    with pytest.raises(WeightsMismatchError, match="1 unexpected.*extra"):
        net.load_codeformer_state_dict({**state, "extra": torch.zeros(1)})


def test_new_layers_train_and_then_the_identity_matters(pair, faces64):
    _, net, _ = pair
    net.train()
    new_params = {k: p for k, p in net.named_parameters() if k.startswith(NEW_LAYER_PREFIXES)}

    def step() -> None:
        net.zero_grad()
        out = net(faces64, identities(2), 0.7)
        targets = torch.randint(0, TINY_CODEFORMER.codebook_size, out.logits.shape[:2],
                                generator=torch.Generator().manual_seed(0))
        loss = out.image.abs().mean() + torch.nn.functional.cross_entropy(out.logits.transpose(1, 2), targets)
        loss.backward()

    step()  # zero-initialised output layers: only they get gradients at first
    assert net.id_cross_layers[0].cross_attn.out_proj.weight.grad.abs().sum() > 0
    assert net.id_adain_dict["32"].mlp[2].weight.grad.abs().sum() > 0
    with torch.no_grad():
        for p in new_params.values():  # a normalised step, large enough to see
            if p.grad.abs().sum() > 0:
                p -= 0.5 * p.grad / p.grad.norm()
    step()  # after one update every new layer is on the gradient path
    for name, p in new_params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    net.eval()
    with torch.no_grad():
        a = net(faces64, identities(2, seed=1), 0.7).image
        b = net(faces64, identities(2, seed=2), 0.7).image
    assert (a - b).abs().max() > 1e-3


def test_identity_of_the_wrong_shape_is_a_usage_error(pair, faces64):
    _, net, _ = pair
    with pytest.raises(UsageError, match=r"\(2, 512\)"):
        net(faces64, identities(1), 0.5)
    with pytest.raises(UsageError):
        net.code_only(faces64)


def test_identity_is_scale_free(pair, faces64):
    _, net, _ = pair
    with torch.no_grad():
        for p in net.id_adain_dict.parameters():
            p.normal_(0, 0.05)  # make the identity path active
        a = net(faces64, identities(2), 0.5).image
        b = net(faces64, 3.0 * identities(2), 0.5).image
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
