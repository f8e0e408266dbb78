"""UADFV and DF-TIMIT adapters on small hand-made trees in each release's layout, and the
frame-folder videos (VidTIMIT's numbered JPEG files) the preprocessing reads."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.benchmark.preprocess.cache import file_identity
from dfbench.benchmark.preprocess.video import VideoReadError, check_opens, count_frames, read_frames
from dfbench.datasets.base import DATASETS, INDEX_COLUMNS, Selection, get_dataset
from dfbench.datasets.dftimit import DFTIMIT
from dfbench.datasets.uadfv import UADFV
from dfbench.testing import write_flat_video as write_video


def write_frames(folder: Path, n: int = 3, value: int = 50, shape: tuple[int, int] = (24, 32), names=None) -> None:
    """VidTIMIT-style frames: JPEG content, numbered names without extension."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names or [f"{k + 1:03d}" for k in range(n)]):
        buf = io.BytesIO()
        Image.fromarray(np.full((*shape, 3), (value + 20 * i) % 256, np.uint8)).save(buf, format="JPEG", quality=95)
        (folder / name).write_bytes(buf.getvalue())


def by_name(index):
    return {vid.split("/", 1)[-1]: row for vid, row in zip(index["video_id"], index.to_dict("records"))}


# ------------------------------------------------------------------------------ UADFV
@pytest.fixture
def uadfv_root(tmp_path: Path) -> Path:
    root = tmp_path / "UADFV"
    for i, rel in enumerate(["real/0000.mp4", "real/0001.mp4", "fake/0000_fake.mp4", "fake/0001_fake.mp4"]):
        write_video(root / rel, value=30 * i)
    (root / "real" / "notes.txt").write_text("not a video")
    return root


def test_uadfv_rows_labels_split_and_pairs(uadfv_root: Path) -> None:
    index = get_dataset("uadfv", uadfv_root).build_index()
    assert list(index.columns) == list(INDEX_COLUMNS)
    rows = by_name(index)
    assert sorted(rows) == ["fake/orig/0000_fake", "fake/orig/0001_fake", "real/orig/0000", "real/orig/0001"]
    assert {r["label"] for k, r in rows.items() if k.startswith("real")} == {0}
    assert {r["label"] for k, r in rows.items() if k.startswith("fake")} == {1}
    assert set(index["split"]) == {"test"} and set(index["quality"]) == {"orig"}
    # a fake's target is its real video (boxes are reused from it); the source is unknown
    assert rows["fake/orig/0001_fake"]["target_id"] == "0001" and rows["fake/orig/0001_fake"]["source_id"] == ""
    assert rows["real/orig/0000"]["target_id"] == "0000"
    assert Path(rows["real/orig/0000"]["path"]) == (uadfv_root / "real" / "0000.mp4").resolve()
    # a protocol's selection of the test split takes every video
    sel = Selection("uadfv", "test").apply(index, UADFV.real_methods)
    assert (sel["label"].value_counts().sort_index().tolist()) == [2, 2]


def test_uadfv_check_compares_with_the_official_49_49(uadfv_root: Path) -> None:
    report = get_dataset("uadfv", uadfv_root).check()
    assert report.problems == [
        "2 real videos found; the official release has 49.",
        "2 fake videos found; the official release has 49.",
    ]
    assert dict(zip(report.counts["method"], report.counts["videos"])) == {"fake": 2, "real": 2}


def test_uadfv_misnamed_fake_and_link_out_of_root_are_left_out(uadfv_root: Path, tmp_path: Path) -> None:
    write_video(uadfv_root / "fake" / "0002.mp4")
    outside = tmp_path / "elsewhere.mp4"
    write_video(outside)
    (uadfv_root / "real" / "0009.mp4").symlink_to(outside)
    adapter = UADFV(uadfv_root)
    index = adapter.build_index()
    assert len(index) == 4
    reasons = {r.entry: r.reason for r in adapter.rejected}
    assert set(reasons) == {"fake/0002.mp4", "real/0009.mp4"}
    assert "not named <video>_fake.mp4" in reasons["fake/0002.mp4"]
    assert "outside the dataset root" in reasons["real/0009.mp4"]
    with pytest.raises(UnsafePathError, match="outside the dataset root"):
        adapter.resolve("../elsewhere.mp4")


def test_uadfv_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "UADFV"
    write_video(root / "real" / "0000.mp4")
    with pytest.raises(DatasetError, match=r"Folder .*fake is missing; the UADFV release has real/ and fake/"):
        UADFV(root).build_index()
    assert any("fake is missing" in p for p in UADFV(root).check().problems)
    with pytest.raises(DatasetError, match="does not exist"):
        UADFV(tmp_path / "nowhere").build_index()


# ------------------------------------------------------------------------------ DF-TIMIT
@pytest.fixture
def dftimit_root(tmp_path: Path) -> Path:
    root = tmp_path / "DF-TIMIT"
    for subject, sentences in (("fadg0", ("sa1", "sa2", "head", "head2")), ("fram1", ("sa1",))):
        for k, sentence in enumerate(sentences):
            write_frames(root / "VidTIMIT" / subject / "video" / sentence, value=10 * k)
    fakes = {
        "lower_quality": ["fadg0/sa1-video-fram1.avi", "fadg0/sa2-video-fram1.avi", "fram1/sa1-video-fadg0.avi"],
        "higher_quality": ["fadg0/sa1-video-fram1.avi", "fram1/sa1-video-fadg0.avi"],
    }
    for folder, names in fakes.items():
        for name in names:
            write_video(root / "DeepfakeTIMIT" / folder / name, size=32)
    # a VidTIMIT subject DeepfakeTIMIT does not use is not a DF-TIMIT real
    write_frames(root / "VidTIMIT" / "mwbt0" / "video" / "sa1")
    return root


def test_dftimit_rows_qualities_and_pairs(dftimit_root: Path) -> None:
    index = get_dataset("dftimit", dftimit_root).build_index()
    rows = by_name(index)
    fakes = {k for k, r in rows.items() if r["label"] == 1}
    reals = {k for k, r in rows.items() if r["label"] == 0}
    assert fakes == {
        "DeepfakeTIMIT/LQ/fadg0/sa1-video-fram1",
        "DeepfakeTIMIT/LQ/fadg0/sa2-video-fram1",
        "DeepfakeTIMIT/LQ/fram1/sa1-video-fadg0",
        "DeepfakeTIMIT/HQ/fadg0/sa1-video-fram1",
        "DeepfakeTIMIT/HQ/fram1/sa1-video-fadg0",
    }
    # the sentence recordings of DeepfakeTIMIT's subjects, once per quality; no head rotations
    assert reals == {f"VidTIMIT/{q}/{s}" for q in ("LQ", "HQ") for s in ("fadg0/sa1", "fadg0/sa2", "fram1/sa1")}
    fake = rows["DeepfakeTIMIT/HQ/fadg0/sa1-video-fram1"]
    assert (fake["target_id"], fake["source_id"], fake["quality"], fake["method"]) == ("fadg0/sa1", "fram1", "HQ", "DeepfakeTIMIT")
    real_lq, real_hq = rows["VidTIMIT/LQ/fadg0/sa1"], rows["VidTIMIT/HQ/fadg0/sa1"]
    assert real_lq["path"] == real_hq["path"] == str((dftimit_root / "VidTIMIT/fadg0/video/sa1").resolve())
    assert set(index["split"]) == {"test"}
    # DT-LQ = the LQ fakes and the reals listed under LQ (the paper's 320 + 320)
    lq = Selection("dftimit", "test", qualities=("LQ",)).apply(index, DFTIMIT.real_methods)
    assert sorted(lq.groupby("label").size().tolist()) == [3, 3]
    assert set(lq["quality"]) == {"LQ"}


def test_dftimit_fakes_reuse_boxes_of_their_vidtimit_real(dftimit_root: Path) -> None:
    from dfbench.benchmark.preprocess.pipeline import reference_video_ids

    index = DFTIMIT(dftimit_root).build_index()
    refs = dict(zip(index["video_id"], reference_video_ids(index, real_methods=DFTIMIT.real_methods, qualities=DFTIMIT.qualities)))
    assert refs["dftimit/DeepfakeTIMIT/LQ/fram1/sa1-video-fadg0"] == "dftimit/VidTIMIT/HQ/fram1/sa1"
    assert refs["dftimit/VidTIMIT/LQ/fadg0/sa2"] == "dftimit/VidTIMIT/HQ/fadg0/sa2"


def test_dftimit_check_counts_per_quality_against_320(dftimit_root: Path) -> None:
    report = DFTIMIT(dftimit_root).check()
    assert report.problems == [
        "DF-TIMIT-HQ has 3 real videos; the official set has 320.",
        "DF-TIMIT-HQ has 2 fake videos; the official set has 320.",
        "DF-TIMIT-LQ has 3 real videos; the official set has 320.",
        "DF-TIMIT-LQ has 3 fake videos; the official set has 320.",
    ]
    counts = {(m, q): (n, o) for m, q, n, o in report.counts[["method", "quality", "videos", "official"]].itertuples(index=False)}
    assert counts == {
        ("DeepfakeTIMIT", "HQ"): (2, 320),
        ("DeepfakeTIMIT", "LQ"): (3, 320),
        ("VidTIMIT", "HQ"): (3, 320),
        ("VidTIMIT", "LQ"): (3, 320),
    }


def test_dftimit_links_out_of_the_root_are_refused(dftimit_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside_frames"
    write_frames(outside)
    (dftimit_root / "VidTIMIT" / "fadg0" / "video" / "sx19").symlink_to(outside, target_is_directory=True)
    linked = dftimit_root / "VidTIMIT" / "fram1" / "video" / "sx29"
    write_frames(linked, n=2)
    os.symlink(outside / "001", linked / "003")
    elsewhere = tmp_path / "fake.avi"
    write_video(elsewhere)
    (dftimit_root / "DeepfakeTIMIT" / "lower_quality" / "fram1" / "sa2-video-fadg0.avi").symlink_to(elsewhere)
    adapter = DFTIMIT(dftimit_root)
    index = adapter.build_index()
    assert not index["path"].str.contains("outside|fake.avi").any()
    assert not index["video_id"].str.contains("sx19|sx29|sa2-video-fadg0").any()
    reasons = {r.entry: r.reason for r in adapter.rejected}
    assert "outside the dataset root" in reasons["VidTIMIT/fadg0/video/sx19"]
    assert "symbolic link" in reasons["VidTIMIT/fram1/video/sx29"]
    assert "outside the dataset root" in reasons["DeepfakeTIMIT/lower_quality/fram1/sa2-video-fadg0.avi"]
    with pytest.raises(UnsafePathError, match="outside the dataset root"):
        adapter.resolve("VidTIMIT/../../outside_frames")


def test_dftimit_missing_folders_are_clear_errors(dftimit_root: Path, tmp_path: Path) -> None:
    no_reals = tmp_path / "only_fakes"
    (no_reals / "DeepfakeTIMIT" / "lower_quality").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"Folder .*VidTIMIT is missing; DF-TIMIT needs DeepfakeTIMIT/ and VidTIMIT/ side by side"):
        DFTIMIT(no_reals).build_index()
    empty = tmp_path / "no_quality"
    (empty / "DeepfakeTIMIT").mkdir(parents=True)
    (empty / "VidTIMIT").mkdir()
    with pytest.raises(DatasetError, match="holds neither higher_quality nor lower_quality"):
        DFTIMIT(empty).build_index()
    # one quality absent: the other is indexed, and check says which is missing
    import shutil

    shutil.rmtree(dftimit_root / "DeepfakeTIMIT" / "higher_quality")
    adapter = DFTIMIT(dftimit_root)
    assert set(adapter.build_index()["quality"]) == {"LQ"}
    assert any("higher_quality is missing" in n for n in adapter.check().notes)
    # a subject without its VidTIMIT recordings: its fakes stay, the gap is recorded
    shutil.rmtree(dftimit_root / "VidTIMIT" / "fram1")
    adapter = DFTIMIT(dftimit_root)
    index = adapter.build_index()
    assert (index["label"] == 1).sum() == 3 and not index["video_id"].str.contains("VidTIMIT/LQ/fram1").any()
    assert [r.entry for r in adapter.rejected] == ["VidTIMIT/fram1/video"]


def test_each_layout_is_recognised_by_its_adapter_only(uadfv_root: Path, dftimit_root: Path) -> None:
    import dfbench.datasets  # noqa: F401  (registers every adapter)

    for root, name in ((uadfv_root, "uadfv"), (dftimit_root, "dftimit")):
        assert [n for n in DATASETS.names() if DATASETS.get(n).looks_like(root)] == [name]


# ------------------------------------------------------------------------------ frame folders
def test_frame_folder_reads_in_numeric_order_with_linspace(tmp_path: Path) -> None:
    folder = tmp_path / "sa1"
    names = [str(k) for k in range(1, 13)]  # "10" sorts after "9" as a number, not as text
    write_frames(folder, names=names, value=0)
    (folder / ".hidden").write_text("ignored")
    got = read_frames(folder, count=4)
    assert got.indices.tolist() == [0, 4, 7, 11] and got.n_frames == 12
    assert (got.width, got.height) == (32, 24) and got.frames.shape == (4, 24, 32, 3)
    # frame k was written with value 20 k (JPEG keeps flat grey within a level or two)
    assert np.abs(got.frames[:, 0, 0, 0].astype(int) - [0, 80, 140, 220]).max() <= 2
    assert count_frames(folder) == 12
    check_opens(folder)
    gray = read_frames(folder, indices=[11], fmt="gray")
    assert gray.frames.shape == (1, 24, 32)


def test_frame_folder_bad_content_is_a_read_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoReadError, match="holds no frames"):
        read_frames(empty, count=2)
    mixed = tmp_path / "mixed"
    write_frames(mixed, n=2)
    write_frames(mixed, names=["003"], shape=(16, 16))
    with pytest.raises(VideoReadError, match="mixes frame sizes"):
        read_frames(mixed, count=3)
    broken = tmp_path / "broken"
    write_frames(broken, n=2)
    (broken / "003").write_bytes(b"not an image")
    with pytest.raises(VideoReadError, match="003 is not a readable image"):
        read_frames(broken, indices=[2])
    linked = tmp_path / "linked"
    write_frames(linked, n=2)
    os.symlink(broken / "001", linked / "003")
    with pytest.raises(VideoReadError, match="is a symbolic link"):
        read_frames(linked, count=2)
    with pytest.raises(OSError, match="symbolic link"):
        file_identity(linked)


def test_frame_folder_identity_follows_its_frames(tmp_path: Path) -> None:
    folder = tmp_path / "sa1"
    write_frames(folder, n=3)
    first = file_identity(folder)
    assert first.startswith("dir:3:") and file_identity(folder) == first
    write_frames(folder, names=["002"], value=200)  # one frame rewritten
    second = file_identity(folder)
    assert second != first
    write_frames(folder, names=["004"])  # one frame added
    assert file_identity(folder).startswith("dir:4:") and file_identity(folder) != second
