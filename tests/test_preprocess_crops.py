"""Preprocessing of datasets whose files already are face crops (WildDeepfake's tar shards).

The tree is built here with real ``.tar.gz`` shards of PNG sequences of different sizes;
frame ``n`` of a sequence is filled with a value derived from ``n`` so the sampled
positions can be read back from the crops' pixels.
"""

from __future__ import annotations

import io
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dfbench  # noqa: F401  (torchvision guard first)
from dfbench.benchmark.data import clear_index_memo, load_frames
from dfbench.benchmark.errors import DfbenchError
from dfbench.benchmark.preprocess.cache import CropCache, CropParams, sequence_identity
from dfbench.benchmark.preprocess.pipeline import ensure_crops, preprocess
from dfbench.datasets.base import Selection
from dfbench.datasets.wilddeepfake import WildDeepfake
from dfbench.testing import write_tar_shard as write_shard

torch.set_num_threads(1)  # 2 shared cores: extra threads only contend

PARAMS = CropParams(frames=4, size=32)
# (folder, shard stem, class, sequence id) -> (frame count, width, height)
SEQUENCES = {
    ("real_test", "1", "real", "0"): (10, 40, 40),
    ("real_test", "1", "real", "5"): (3, 24, 48),  # tall: fewer frames than asked, padded left/right
    ("real_test", "2", "real", "0"): (6, 64, 32),  # wide: padded top/bottom
    ("fake_test", "3", "fake", "0"): (9, 20, 20),  # small: up-sampled
    ("fake_test", "3", "fake", "1"): (5, 50, 50),
    ("real_train", "4", "real", "0"): (4, 16, 16),
    ("fake_train", "5", "fake", "0"): (4, 16, 16),
}


def value(cls: str, n: int) -> int:
    return (100 if cls == "real" else 20) + 7 * n


def png(val: int, width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), val, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def shard_members(folder: str, stem: str) -> dict[str, bytes]:
    members = {}
    for (f, s, cls, seq), (count, w, h) in SEQUENCES.items():
        if (f, s) == (folder, stem):
            # written in reverse order: the reader must sort frames numerically
            for n in reversed(range(count)):
                members[f"./{s}/{cls}/{seq}/{n}.png"] = png(value(cls, n), w, h)
    return members


def build_tree(root: Path) -> Path:
    for folder, stem in {(f, s) for f, s, _, _ in SEQUENCES}:
        write_shard(root / folder / f"{stem}.tar.gz", shard_members(folder, stem))
    return root


@pytest.fixture
def wdf(tmp_path: Path) -> Path:
    clear_index_memo()  # each test has its own root; never reuse another test's index
    yield build_tree(tmp_path / "wdf")
    clear_index_memo()


def video_id(folder: str, stem: str, cls: str, seq: str) -> str:
    return f"wdf/{cls}/orig/{folder}/{stem}/{stem}/{seq}"


def test_load_frames_gives_sampled_resized_crops_with_labels_and_ids(wdf: Path, tmp_path: Path) -> None:
    frames = load_frames(
        [Selection("wdf", "test")],
        roots={"wdf": wdf},
        cache=CropCache(tmp_path / "cache"),
        crop=PARAMS,
        requires=("landmarks",),
        progress=False,
    )
    meta = frames.meta
    assert frames.images.shape[1:] == (32, 32, 3) and frames.images.dtype == np.uint8
    expected = {video_id(*k): v for k, v in SEQUENCES.items() if k[0].endswith("_test")}
    assert set(meta["video_id"]) == set(expected)
    assert frames.attrs["failed"] == []
    for vid, (count, width, height) in expected.items():
        rows = meta.index[meta["video_id"] == vid]
        cls = vid.split("/")[1]
        assert (meta.loc[rows, "label"] == (1 if cls == "fake" else 0)).all()
        assert (meta.loc[rows, "split"] == "test").all()
        # the video sampler's rule: linspace over the sequence, each frame once when short
        positions = np.unique(np.linspace(0, count - 1, 4).round().astype(int)) if count > 4 else np.arange(count)
        assert meta.loc[rows, "frame"].tolist() == positions.tolist()
        images = frames.images[rows]
        # the centre pixel carries the frame's value: the right frames, in order
        assert [int(img[16, 16, 0]) for img in images] == [value(cls, int(n)) for n in positions]
        # non-square crops keep their aspect: black padding on the short side, none elsewhere
        if width > height:
            assert (images[:, 0, 16] == 0).all() and (images[:, 16, 0] != 0).all()
        elif height > width:
            assert (images[:, 16, 0] == 0).all() and (images[:, 0, 16] != 0).all()
        else:
            assert (images[:, 0, 0] == images[:, 16, 16]).all()
    assert meta["face_found"].all()
    assert frames.extras["landmarks"].shape == (len(meta), 5, 2)
    assert np.isnan(frames.extras["landmarks"]).all()  # no detector ran on face-crop files


def test_cache_hit_reads_no_archive(wdf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = WildDeepfake(wdf).build_index()
    cache = CropCache(tmp_path / "cache")
    kwargs = dict(cache=cache, params=PARAMS, real_methods=("real",), qualities=("orig",), progress=False, keep=True)
    cold, cold_entries = ensure_crops(index, **kwargs)
    assert (cold.processed, cold.cached, cold.failed) == (len(index), 0, {})
    assert cold.detected_references == 0  # no face detection for face-crop files

    def no_tar(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached pass opened an archive")

    monkeypatch.setattr(tarfile, "open", no_tar)
    warm, warm_entries = ensure_crops(index, **kwargs)
    assert (warm.processed, warm.cached, warm.failed) == (0, len(index), {})
    for vid, entry in cold_entries.items():
        np.testing.assert_array_equal(warm_entries[vid]["crops"], entry["crops"])
    # the same through load_frames (its index memo is filled once, before tar is blocked)
    monkeypatch.undo()
    first = load_frames([Selection("wdf", "train")], roots={"wdf": wdf}, cache=cache, crop=PARAMS, progress=False)
    monkeypatch.setattr(tarfile, "open", no_tar)
    second = load_frames([Selection("wdf", "train")], roots={"wdf": wdf}, cache=cache, crop=PARAMS, progress=False)
    np.testing.assert_array_equal(first.images, second.images)


def test_malicious_shard_fails_its_sequences_and_the_run_goes_on(wdf: Path, tmp_path: Path) -> None:
    # The adapter's build_index leaves a malicious shard out (adapter.rejected), so the case
    # preprocessing meets is a shard replaced after indexing (load_frames memoises the index).
    cache = CropCache(tmp_path / "cache")
    first = load_frames([Selection("wdf", "test")], roots={"wdf": wdf}, cache=cache, crop=PARAMS, progress=False)
    assert first.attrs["failed"] == []
    index = WildDeepfake(wdf).build_index()
    shard = wdf / "fake_test" / "3.tar.gz"
    evil = tarfile.TarInfo("../../escape.png")
    data = png(1, 4, 4)
    evil.size = len(data)
    with tarfile.open(shard, "w:gz") as tar:
        for name, payload in shard_members("fake_test", "3").items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        tar.addfile(evil, io.BytesIO(data))
    test = index[index["split"] == "test"].reset_index(drop=True)
    report, entries = ensure_crops(
        test, cache=cache, params=PARAMS, real_methods=("real",), qualities=("orig",), progress=False, keep=True
    )
    bad = {video_id("fake_test", "3", "fake", "0"), video_id("fake_test", "3", "fake", "1")}
    assert set(report.failed) == bad
    for reason in report.failed.values():
        assert str(shard) in reason and "'../../escape.png'" in reason and "refused" in reason
    assert set(entries) == set(test["video_id"]) - bad  # the other videos were cropped
    # the failure is cached against the shard's new identity: a second pass does not retry it
    again, _ = ensure_crops(test, cache=cache, params=PARAMS, real_methods=("real",), qualities=("orig",), progress=False)
    assert again.cached == len(test) and set(again.failed) == bad
    # load_frames (same index, the shard changed underneath) leaves them out with a warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = load_frames([Selection("wdf", "test")], roots={"wdf": wdf}, cache=cache, crop=PARAMS, progress=False)
    assert {r.video_id for r in frames.attrs["failed"]} == bad
    assert not set(frames.meta["video_id"]) & bad and len(frames.meta) > 0
    assert any("yield no frames" in str(w.message) for w in caught)


def test_missing_or_corrupt_shard_is_a_per_video_failure(wdf: Path, tmp_path: Path) -> None:
    index = WildDeepfake(wdf).build_index()
    test = index[index["split"] == "test"].reset_index(drop=True)
    (wdf / "real_test" / "2.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    (wdf / "fake_test" / "3.tar.gz").unlink()
    report = preprocess(test, cache=CropCache(tmp_path / "cache"), params=PARAMS, adapter=WildDeepfake(wdf), progress=False)
    corrupt = report.failed[video_id("real_test", "2", "real", "0")]
    assert corrupt.startswith(f"Archive {wdf / 'real_test' / '2.tar.gz'} is corrupt or truncated") and "re-download" in corrupt
    assert "archive of" in report.failed[video_id("fake_test", "3", "fake", "0")]
    assert report.ok == 2  # shard 1's two sequences


def test_sequence_identity_hashes_the_archive_and_names_the_sequence(wdf: Path, tmp_path: Path) -> None:
    shard = (wdf / "real_test" / "1.tar.gz").resolve()
    a, b = sequence_identity(f"{shard}::1/real/0"), sequence_identity(f"{shard}::1/real/5")
    assert a != b and a.split("::")[0] == b.split("::")[0]
    cache = CropCache(tmp_path / "cache")
    key = cache.sequence_key(a, PARAMS)
    # parameters that do not change a face-crop file's pixels do not change its key ...
    assert cache.sequence_key(a, CropParams(frames=4, size=32, margin=1.6, thresholds=(0.5, 0.5, 0.5))) == key
    # ... those that do, do
    assert cache.sequence_key(a, CropParams(frames=5, size=32)) != key
    assert cache.sequence_key(a, CropParams(frames=4, size=48)) != key
    # another shard changing leaves this identity alone; rewriting this shard changes it
    write_shard(wdf / "real_test" / "2.tar.gz", shard_members("real_test", "1"))
    assert sequence_identity(f"{shard}::1/real/0") == a
    write_shard(shard, {**shard_members("real_test", "1"), "./1/real/9/0.png": png(3, 8, 8)})
    assert sequence_identity(f"{shard}::1/real/0") != a
    with pytest.raises(DfbenchError, match="is not '<archive>::<sequence key>'"):
        sequence_identity(str(shard))
