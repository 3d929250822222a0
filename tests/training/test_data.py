"""Degradations (seeded, within their ranges), datasets and the resumable sample order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from vidrestore.training.data import (
    DegradationConfig,
    FaceDataset,
    StreamSampler,
    degrade,
    folder_paths,
    identity_paths,
)
from vidrestore.training.data.degradations import gaussian_kernel

from vidrestore.config import from_mapping
from vidrestore.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def face(smoke_root) -> np.ndarray:
    from vidrestore.training.data.datasets import read_face

    return read_face(folder_paths(smoke_root / "faces")[0], 128)


def test_degradation_is_a_function_of_the_seed(face):
    cfg = DegradationConfig(kernel_size=11, blur_sigma=(0.5, 3.0), downsample=(1.0, 6.0))
    a = degrade(face, cfg, np.random.default_rng(7))
    b = degrade(face, cfg, np.random.default_rng(7))
    c = degrade(face, cfg, np.random.default_rng(8))
    assert np.array_equal(a[0], b[0]) and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == face.shape and a[0].dtype == np.float32 and 0 <= a[0].min() and a[0].max() <= 1


def test_degradation_draws_stay_in_the_default_ranges(face):
    cfg = DegradationConfig()  # the official Stage II options: no colour jitter, no grey
    assert (cfg.kernel_size, cfg.blur_sigma, cfg.downsample, cfg.noise, cfg.jpeg) == (41, (1, 15), (4, 30), (0, 20), (30, 80))
    assert (cfg.color_jitter_prob, cfg.gray_prob, cfg.gray_gt) == (0.0, 0.0, False)
    small = face[::4, ::4].copy()  # the draws do not depend on the size; keep it cheap
    kinds = set()
    for seed in range(60):
        _, gt, p = degrade(small, cfg, np.random.default_rng(seed))
        assert p.sigma is not None and all(1 <= s <= 15 for s in p.sigma)
        assert 4 <= p.scale <= 30 and 0 <= p.noise_sigma <= 20 and 30 <= p.jpeg_quality <= 80
        if p.kernel == "iso":
            assert p.sigma[0] == p.sigma[1] and p.theta == 0
        kinds.add(p.kernel)
        assert p.jitter is None and not p.gray and np.array_equal(gt, small)  # the GT is untouched
    assert kinds == {"iso", "aniso"}


def test_colour_jitter_and_grey_are_named_options_on_the_lq_only(face):
    small = face[::4, ::4].copy()
    cfg = DegradationConfig(color_jitter_prob=0.5, gray_prob=0.5)
    jitters = grays = 0
    for seed in range(40):
        lq, gt, p = degrade(small, cfg, np.random.default_rng(seed))
        np.testing.assert_array_equal(gt, small)  # official: "only for lq"
        if p.jitter is not None:
            jitters += 1
            assert all(abs(s) <= 20 for s in p.jitter)
        if p.gray:
            grays += 1
            assert np.allclose(lq[..., 0], lq[..., 1])
    assert 8 <= jitters <= 32 and 8 <= grays <= 32
    _, gt, p = degrade(small, DegradationConfig(gray_prob=1.0, gray_gt=True), np.random.default_rng(0))
    assert p.gray and np.allclose(gt[..., 0], gt[..., 2])  # the deviation, when asked for


def test_gaussian_kernel_is_normalised_and_oriented():
    k = gaussian_kernel(21, 4.0, 1.0, 0.0)
    assert k.shape == (21, 21) and abs(k.sum() - 1) < 1e-5
    assert k[10, 14] > k[14, 10]  # wide along x at theta 0
    r = gaussian_kernel(21, 4.0, 1.0, np.pi / 2)
    assert np.allclose(r, k.T, atol=1e-6)


@pytest.mark.parametrize("bad", [
    {"kernel_size": 40}, {"blur_sigma": [3, 1]}, {"downsample": [0.5, 2]}, {"jpeg": [0, 80]},
    {"kernel_types": ["iso", "motion"]}, {"blur_sgima": [1, 2]},
])
def test_degradation_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        from_mapping(DegradationConfig, bad)


def test_samples_are_the_same_with_any_number_of_workers(smoke_root):
    ds = FaceDataset(folder_paths(smoke_root / "faces"), 64, DegradationConfig(kernel_size=7, blur_sigma=(0.2, 2)), seed=3)

    def batches(workers: int) -> list[dict]:
        sampler = StreamSampler(len(ds), 2, seed=3, start_step=5)
        loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=workers)
        it = iter(loader)
        out = [next(it) for _ in range(3)]
        del it
        return out

    threads = cv2.getNumThreads()
    cv2.setNumThreads(0)  # as the trainer does before forking workers: OpenCV's pool does not survive fork
    try:
        pairs = list(zip(batches(0), batches(2)))
    finally:
        cv2.setNumThreads(threads)
    for a, b in pairs:
        assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["hq"], b["hq"])
        assert torch.equal(a["index"], b["index"])


def test_stream_sampler_resumes_and_splits_like_one_big_batch():
    one = StreamSampler(7, 4, seed=1)
    ranks = [StreamSampler(7, 2, rank=r, world_size=2, seed=1) for r in range(2)]
    for step in range(6):  # batches span epochs: 7 is not a multiple of 4
        assert one.keys(step) == ranks[0].keys(step) + ranks[1].keys(step)
    resumed = iter(StreamSampler(7, 4, seed=1, start_step=3))
    assert [next(resumed) for _ in range(8)] == one.keys(3) + one.keys(4)
    epoch0 = [k for s in range(7) for k in one.keys(s)][:7]
    assert sorted(i for _, i in epoch0) == list(range(7)) and {e for e, _ in epoch0} == {0}


def test_identity_layout_gives_reference_of_the_same_person(smoke_root):
    paths, persons, names = identity_paths(smoke_root / "persons")
    assert names[0] == "real_astronaut" and len(names) == 4
    ds = FaceDataset(paths, 64, DegradationConfig(kernel_size=7, blur_sigma=(0.2, 2)), persons=persons, hflip=False)
    for index in range(len(ds)):
        sample = ds[(0, index)]
        assert sample["person"] == persons[index]
        same = [ds.face(j) for j in range(len(ds)) if persons[j] == persons[index] and j != index]
        ref = sample["ref"].permute(1, 2, 0).numpy() * 0.5 + 0.5
        assert any(np.allclose(ref, s, atol=1e-6) for s in same)


def test_validation_reads_a_given_lq_gt_pair_instead_of_degrading(tiny_config, smoke_root, tmp_path):
    from vidrestore.training.data.datasets import PairedFaceDataset
    from vidrestore.training.stages import STAGES
    from vidrestore.training.trainer import Trainer

    gt, lq = tmp_path / "celeba_test" / "hq", tmp_path / "celeba_test" / "lq"
    gt.mkdir(parents=True)
    lq.mkdir()
    for i, path in enumerate(sorted((smoke_root / "val").glob("*.png"))[:2]):
        image = cv2.resize(cv2.imread(str(path)), (64, 64), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(gt / f"{i:04d}.png"), image)
        cv2.imwrite(str(lq / f"{i:04d}.png"), cv2.GaussianBlur(image, (0, 0), 2))
    pairs = PairedFaceDataset(lq, gt, 64)
    sample = pairs[(7, 1)]
    assert torch.equal(sample["ref"], sample["lq"]) and sample["index"] == 1
    blurred = cv2.GaussianBlur(cv2.imread(str(gt / "0001.png")), (0, 0), 2)[..., ::-1].astype(np.float32) / 255
    np.testing.assert_allclose(sample["lq"].permute(1, 2, 0).numpy(), blurred * 2 - 1, atol=1e-6)  # as given
    lines = []
    cfg = tiny_config("transformer", total_steps=1, val_every=1,
                      data={"val_root": str(gt), "val_lq": str(lq), "val_count": 2})
    result = Trainer(STAGES["transformer"], cfg, log=lines.append).run()
    assert result.validations and any("given LQ faces" in line for line in lines)
    (lq / "0002.png").write_bytes((lq / "0001.png").read_bytes())
    with pytest.raises(InputError, match="no ground truth"):
        PairedFaceDataset(lq, gt, 64)
