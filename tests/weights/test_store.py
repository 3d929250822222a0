"""The weights store against a real local HTTP server: download, checks, corruption, offline."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from vidrestore.errors import ChecksumError, MissingWeightsError, UsageError
from vidrestore.weights import KNOWN_WEIGHTS, KnownWeights, WeightStore

PAYLOAD = b"not really a network, but bytes with a known hash" * 1000


def entry(name: str, url: str, data: bytes | None, **kw) -> KnownWeights:
    digest = hashlib.sha256(data).hexdigest() if data is not None else None
    return KnownWeights(name, kw.pop("filename", f"{name}.pth"), url, digest, "test", "test", None,
                        "a test file", **kw)


def test_fetch_downloads_checks_and_caches(server, tmp_path):
    root, base = server
    (root / "good.pth").write_bytes(PAYLOAD)
    table = {"good": entry("good", f"{base}/good.pth", PAYLOAD)}
    calls = []
    store = WeightStore(cache_dir=tmp_path / "cache", table=table, progress=lambda d, t: calls.append((d, t)))
    path = store.require("good")
    assert path == tmp_path / "cache" / "good.pth"
    assert path.read_bytes() == PAYLOAD
    assert calls and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    (root / "good.pth").unlink()  # a second require must not touch the network
    assert store.require("good") == path
    assert [r.status for r in store.verify()] == ["ok"]


def test_corrupted_download_is_rejected_and_nothing_is_left(server, tmp_path):
    root, base = server
    (root / "bad.pth").write_bytes(PAYLOAD[:-1] + b"!")
    table = {"bad": entry("bad", f"{base}/bad.pth", PAYLOAD)}
    store = WeightStore(cache_dir=tmp_path / "cache", table=table)
    with pytest.raises(ChecksumError, match="corrupt"):
        store.require("bad")
    assert not (tmp_path / "cache" / "bad.pth").exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no partial files either


def test_a_corrupted_cached_file_is_detected(server, tmp_path):
    root, base = server
    (root / "good.pth").write_bytes(PAYLOAD)
    table = {"good": entry("good", f"{base}/good.pth", PAYLOAD)}
    store = WeightStore(cache_dir=tmp_path / "cache", table=table)
    path = store.require("good")
    path.write_bytes(b"bit rot")
    with pytest.raises(ChecksumError):
        store.require("good")
    assert [r.status for r in store.verify()] == ["mismatch"]


def test_unreachable_download_names_the_file_its_url_and_where_to_put_it(tmp_path):
    url = "http://127.0.0.1:9/nothing-listens-here.pth"
    store = WeightStore(cache_dir=tmp_path / "cache", table={"x": entry("x", url, PAYLOAD)})
    with pytest.raises(MissingWeightsError) as info:
        store.require("x")
    message = str(info.value)
    assert "x.pth" in message and url in message and str(tmp_path / "cache") in message
    assert "\n" not in message


def test_offline_store_never_downloads(server, tmp_path):
    root, base = server
    (root / "good.pth").write_bytes(PAYLOAD)
    table = {"good": entry("good", f"{base}/good.pth", PAYLOAD)}
    store = WeightStore(weights_dir=tmp_path / "offline", cache_dir=tmp_path / "cache", table=table,
                        allow_download=False)
    with pytest.raises(MissingWeightsError, match="downloads are off"):
        store.require("good")
    (tmp_path / "offline").mkdir()
    (tmp_path / "offline" / "good.pth").write_bytes(PAYLOAD)
    assert store.require("good") == tmp_path / "offline" / "good.pth"


def test_weights_dir_wins_over_the_cache(tmp_path):
    table = {"good": entry("good", "http://127.0.0.1:9/x", PAYLOAD)}
    for folder in ("offline", "cache"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "good.pth").write_bytes(PAYLOAD)
    store = WeightStore(tmp_path / "offline", tmp_path / "cache", table=table)
    assert store.find("good") == tmp_path / "offline" / "good.pth"


def test_member_of_a_zip_archive_is_extracted_and_checked(server, tmp_path):
    root, base = server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("pack/other.onnx", b"something else")
        zf.writestr("pack/model.onnx", PAYLOAD)
    (root / "pack.zip").write_bytes(buffer.getvalue())
    table = {"m": entry("m", f"{base}/pack.zip", PAYLOAD, filename="model.onnx", member="model.onnx")}
    store = WeightStore(cache_dir=tmp_path / "cache", table=table)
    assert store.require("m").read_bytes() == PAYLOAD


def test_import_identifies_by_hash_and_refuses_impostors(tmp_path):
    table = {"good": entry("good", "http://127.0.0.1:9/x", PAYLOAD)}
    store = WeightStore(cache_dir=tmp_path / "cache", table=table)
    renamed = tmp_path / "downloaded (1).pth"
    renamed.write_bytes(PAYLOAD)
    known, path = store.import_file(renamed)
    assert known.name == "good" and path.read_bytes() == PAYLOAD
    impostor = tmp_path / "good.pth"
    impostor.write_bytes(b"something else")
    with pytest.raises(ChecksumError):
        store.import_file(impostor)
    stranger = tmp_path / "stranger.pth"
    stranger.write_bytes(b"who knows")
    with pytest.raises(UsageError, match="not a known checkpoint"):
        store.import_file(stranger)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UsageError, match="codeformer"):
        WeightStore().entry("gfpgan")


def test_known_table_is_well_formed():
    for name, known in KNOWN_WEIGHTS.items():
        assert known.name == name
        assert known.url.startswith("https://") and known.filename
        assert known.sha256 is None or (len(known.sha256) == 64 and int(known.sha256, 16) >= 0)
        assert known.license
    assert KNOWN_WEIGHTS["codeformer"].key == "params_ema"
    assert KNOWN_WEIGHTS["codeformer"].sha256.startswith("1009e537")


def test_sidecar_hash_is_reused_until_the_file_changes(tmp_path, monkeypatch):
    from vidrestore.weights import store as store_module

    table = {"good": entry("good", "http://127.0.0.1:9/x", PAYLOAD)}
    (tmp_path / "cache").mkdir()
    path = tmp_path / "cache" / "good.pth"
    path.write_bytes(PAYLOAD)
    store = WeightStore(cache_dir=tmp_path / "cache", table=table)
    hashed = []
    real = store_module.file_sha256
    monkeypatch.setattr(store_module, "file_sha256", lambda p: hashed.append(p) or real(p))
    store.require("good")
    store.require("good")
    assert len(hashed) == 1
    Path(path).write_bytes(PAYLOAD + b"x")
    with pytest.raises(ChecksumError):
        store.require("good")
    assert len(hashed) == 2
