"""The detector and mask a default run uses: RetinaFace ResNet-50 and ParseNet fetched on the
first run where downloads are allowed (here from a local HTTP server serving full-size random
weights in the official format, under the official file names, sha256-checked), MTCNN and the
template mask offline; and ``weights fetch --all``."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from vidrestore.cli import main
from vidrestore.faces.detect import build_detector
from vidrestore.faces.detect.mtcnn import MTCNNDetector
from vidrestore.faces.detect.retinaface import RetinaFaceDetector, build_retinaface_net
from vidrestore.faces.paste import TemplateMasker, build_masker
from vidrestore.faces.paste.parsing import ParsingMasker, build_parsenet
from vidrestore.weights import DEFAULT_RUN, KNOWN_WEIGHTS, WeightStore


@pytest.fixture(scope="module")
def official_like(tmp_path_factory):
    """Random RetinaFace ResNet-50 and ParseNet checkpoints saved as facexlib saves them."""
    folder = tmp_path_factory.mktemp("official_like")
    torch.manual_seed(0)
    retina = build_retinaface_net("resnet50").state_dict()
    torch.save({f"module.{k}": v for k, v in retina.items()}, folder / "detection_Resnet50_Final.pth")
    torch.save(build_parsenet().state_dict(), folder / "parsing_parsenet.pth")
    return folder


def _table(base: str, files) -> dict:
    """The known-weights table with the files served at ``base`` and their real sha256."""
    table = dict(KNOWN_WEIGHTS)
    for path in files:
        name = next(k for k, v in KNOWN_WEIGHTS.items() if v.filename == path.name)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        table[name] = dataclasses.replace(KNOWN_WEIGHTS[name], url=f"{base}/{path.name}", sha256=digest)
    return table


@pytest.mark.slow
def test_first_online_run_fetches_retinaface_and_parsenet_once(server, tmp_path, official_like):
    root, base = server
    files = [Path(shutil.copy(official_like / n, root / n))
             for n in ("detection_Resnet50_Final.pth", "parsing_parsenet.pth")]
    table = _table(base, files)
    store = WeightStore(tmp_path / "none", tmp_path / "cache", table=table)
    detector = build_detector("auto", store)
    assert isinstance(detector, RetinaFaceDetector) and detector.name == "retinaface-resnet50"
    assert "fetched" in detector.reason and (tmp_path / "cache" / "detection_Resnet50_Final.pth").is_file()
    masker = build_masker("auto", store)
    assert isinstance(masker, ParsingMasker) and "fetched" in masker.reason
    for f in files:  # the server forgets them: a second run must not need it
        f.unlink()
    again = build_detector("auto", store)
    assert isinstance(again, RetinaFaceDetector) and "found" in again.reason
    assert isinstance(build_masker("auto", store), ParsingMasker)


def test_offline_runs_use_mtcnn_and_the_template_mask_and_say_so(tmp_path):
    store = WeightStore(tmp_path / "none", tmp_path / "cache", allow_download=False)
    detector = build_detector("auto", store)
    assert isinstance(detector, MTCNNDetector) and detector.reason.startswith("offline")
    masker = build_masker("auto", store)
    assert isinstance(masker, TemplateMasker) and masker.reason.startswith("offline")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())  # nothing was downloaded


def test_a_failed_download_falls_back_with_the_reason(server, tmp_path):
    _, base = server  # serves nothing: every download is a 404
    table = {k: dataclasses.replace(v, url=f"{base}/{v.filename}") for k, v in KNOWN_WEIGHTS.items()}
    store = WeightStore(tmp_path / "none", tmp_path / "cache", table=table)
    detector = build_detector("auto", store)
    assert isinstance(detector, MTCNNDetector) and "detection_Resnet50_Final.pth" in detector.reason
    masker = build_masker("auto", store)
    assert isinstance(masker, TemplateMasker) and "parsing_parsenet.pth" in masker.reason


def test_weights_fetch_all_gets_every_file_a_default_run_uses(server, tmp_path, monkeypatch, capsys):
    root, base = server
    served = []
    for name in DEFAULT_RUN:
        path = root / KNOWN_WEIGHTS[name].filename
        path.write_bytes(f"stand-in for {name}".encode() * 100)
        served.append(path)
    for name, entry in _table(base, served).items():
        monkeypatch.setitem(KNOWN_WEIGHTS, name, entry)
    cache = tmp_path / "cache"
    assert main(["weights", "--cache-dir", str(cache), "fetch", "--all"]) == 0
    assert sorted(p.name for p in cache.glob("*.pth")) == sorted(KNOWN_WEIGHTS[n].filename for n in DEFAULT_RUN)
    out = capsys.readouterr().out
    assert all(f"{name}: " in out for name in DEFAULT_RUN)
    assert main(["weights", "--cache-dir", str(cache), "fetch"]) == 2  # nothing named, no --all
