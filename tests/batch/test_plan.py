"""Planning a batch: which files, under which root, to which outputs, in which shard."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidrestore.batch.plan import (
    collect_inputs,
    output_suffix,
    parse_shard,
    plan_outputs,
    read_manifest,
    select_shard,
    shard_of,
)
from vidrestore.errors import UsageError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def keys(root: Path, files: list[Path]) -> list[str]:
    return [f.relative_to(root).as_posix() for f in files]


def test_folders_are_searched_for_videos_skipping_hidden_files_and_the_output(tmp_path):
    src = tmp_path / "tapes"
    for name in ("a.mp4", "b.MOV", "sub/c.mkv", "sub/notes.txt", ".hidden.mp4", ".cache/d.mp4", "out/e.mp4"):
        touch(src / name)
    root, files = collect_inputs([src], exclude=[src / "out"])
    assert root == src
    assert keys(root, files) == ["a.mp4", "b.MOV", "sub/c.mkv"]


def test_root_is_the_deepest_folder_holding_every_input(tmp_path):
    a = touch(tmp_path / "x" / "one" / "a.mp4")
    touch(tmp_path / "x" / "two" / "deep" / "b.mp4")
    root, files = collect_inputs([a, tmp_path / "x" / "two"])
    assert root == tmp_path / "x"
    assert keys(root, files) == ["one/a.mp4", "two/deep/b.mp4"]
    root, files = collect_inputs([a])  # a single file: its own folder
    assert root == a.parent and keys(root, files) == ["a.mp4"]


def test_named_files_are_taken_whatever_their_name_and_missing_ones_are_kept(tmp_path):
    text = touch(tmp_path / "notes.txt")
    root, files = collect_inputs([text, tmp_path / "gone.mp4"])
    assert keys(root, files) == ["gone.mp4", "notes.txt"]


def test_glob_matches_names_or_paths_below_the_folder(tmp_path):
    for name in ("a.mp4", "b.mkv", "sub/c.MKV", "sub/d.avi", "other/e.mkv"):
        touch(tmp_path / name)
    assert keys(tmp_path, collect_inputs([tmp_path], patterns=["*.mkv"])[1]) == ["b.mkv", "other/e.mkv", "sub/c.MKV"]
    assert keys(tmp_path, collect_inputs([tmp_path], patterns=["sub/*"])[1]) == ["sub/c.MKV", "sub/d.avi"]


def test_manifest_lines_comments_and_relative_paths(tmp_path):
    touch(tmp_path / "v" / "a.mp4")
    b = touch(tmp_path / "w" / "b.mov")
    manifest = tmp_path / "lists" / "batch.txt"
    manifest.parent.mkdir()
    manifest.write_text(f"# tapes of 1987\n\n../v/a.mp4\n   {b}  \n# done: c.mp4\n")
    assert read_manifest(manifest) == [manifest.parent / "../v/a.mp4", b]
    root, files = collect_inputs([], manifest=manifest)
    assert root == tmp_path and keys(root, files) == ["v/a.mp4", "w/b.mov"]


def test_no_inputs_is_a_usage_error():
    with pytest.raises(UsageError, match="no inputs"):
        collect_inputs([])


@pytest.mark.parametrize("suffix,codec,expected", [
    (".mp4", "libx264", ".mp4"), (".MOV", "libx264", ".MOV"), (".mkv", "libx264", ".mkv"),
    (".webm", "libx264", ".mkv"), (".mts", "libx264", ".mkv"), (".avi", "libx265", ".mkv"),
    (".mp4", "ffv1", ".mkv"), (".mkv", "ffv1", ".mkv"), (".mp4", "prores_ks", ".mov"),
    (".mkv", "prores_ks", ".mkv"), (".webm", "libvpx-vp9", ".webm"), (".avi", "libvpx-vp9", ".webm"),
])
def test_output_container_keeps_the_input_extension_unless_the_codec_needs_another(suffix, codec, expected):
    assert output_suffix(suffix, codec) == expected


def test_every_codec_has_its_containers():
    from vidrestore.io.encoding import CODECS

    assert all(output_suffix(".xyz", codec) for codec in CODECS)


def test_outputs_mirror_the_tree_and_same_stems_keep_their_full_name(tmp_path):
    root = tmp_path / "in"
    files = [root / "a.mp4", root / "a.mov", root / "sub" / "b.webm"]
    items = plan_outputs(files, root, tmp_path / "out", "libx264")
    out = tmp_path / "out"
    assert [(i.key, i.output, i.report) for i in items] == [
        ("a.mp4", out / "a.mp4.mp4", out / "a.mp4.faces.json"),
        ("a.mov", out / "a.mov.mov", out / "a.mov.faces.json"),
        ("sub/b.webm", out / "sub" / "b.mkv", out / "sub" / "b.faces.json"),
    ]


def test_an_output_that_would_replace_an_input_is_refused(tmp_path):
    with pytest.raises(UsageError, match="replace an input"):
        plan_outputs([tmp_path / "a.mp4"], tmp_path, tmp_path, "libx264")


def test_shards_partition_the_inputs_the_same_way_everywhere(tmp_path):
    files = [tmp_path / f"d{i % 7}" / f"clip{i}.mp4" for i in range(200)]
    items = plan_outputs(files, tmp_path, tmp_path / "out", "libx264")
    shards = [select_shard(items, k, 3) for k in range(3)]
    assert sorted(i.key for s in shards for i in s) == sorted(i.key for i in items)
    assert all(len(s) > 40 for s in shards)  # roughly balanced
    # a hash of the key (not Python's salted hash()): the same on every machine and run
    assert [shard_of(f"tape{i}.mp4", 4) for i in range(10)] == [3, 3, 0, 1, 0, 1, 1, 1, 1, 3]


@pytest.mark.parametrize("text", ["3/3", "1", "a/b", "-1/2", "0/0"])
def test_bad_shards(text):
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)


def test_good_shard():
    assert parse_shard("2/5") == (2, 5)
