"""Celeb-DF (v1, v2), DFDC preview, DFDC and WildDeepfake adapters on tiny fixture trees in
each dataset's official layout: real H.264 videos (PyAV) and real tar.gz shards of PNGs."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.datasets.base import INDEX_COLUMNS, get_dataset
from dfbench.datasets.celebdf import CelebDF, CelebDFv1
from dfbench.datasets.dfdc import DFDC
from dfbench.datasets.dfdcp import DFDCPreview
from dfbench.datasets.wilddeepfake import WildDeepfake, read_sequence, sample_sequence, split_sequence_path
from dfbench.testing import write_flat_video as write_video
from dfbench.testing import write_tar_shard as write_shard


def png_bytes(value: int, size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def by_name(index):
    return {vid.split("/", 3)[-1]: row for vid, row in zip(index["video_id"], index.to_dict("records"))}


# ------------------------------------------------------------------------------ Celeb-DF
CELEB_FILES = [
    "Celeb-real/id0_0000.mp4",
    "Celeb-real/id1_0000.mp4",
    "Celeb-real/id2_0000.mp4",
    "YouTube-real/00000.mp4",
    "YouTube-real/00003.mp4",
    "Celeb-synthesis/id0_id1_0000.mp4",
    "Celeb-synthesis/id1_id0_0000.mp4",
    "Celeb-synthesis/id2_id0_0000.mp4",
    "Celeb-synthesis/id10_id2_0001.mp4",
]
CELEB_LIST = "1 Celeb-real/id1_0000.mp4\n0 Celeb-synthesis/id1_id0_0000.mp4\n1 YouTube-real/00003.mp4\n"


@pytest.fixture(scope="module")
def celeb_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("celebdf")
    for i, rel in enumerate(CELEB_FILES):
        write_video(root / rel, value=20 * i)
    (root / "List_of_testing_videos.txt").write_text(CELEB_LIST)
    return root


def test_celebdf_labels_splits_and_pairing(celeb_root):
    index = get_dataset("celebdf", celeb_root).build_index()
    assert list(index.columns) == list(INDEX_COLUMNS)
    rows = by_name(index)
    assert len(index) == len(CELEB_FILES)
    # the list's "1 = REAL" becomes label 0; listed → test; id0/id10 and clip 00000 → val; rest train
    expected = {
        "id0_0000": (0, "val"),
        "id1_0000": (0, "test"),
        "id2_0000": (0, "train"),
        "00000": (0, "val"),
        "00003": (0, "test"),
        "id0_id1_0000": (1, "val"),
        "id1_id0_0000": (1, "test"),
        "id2_id0_0000": (1, "train"),
        "id10_id2_0001": (1, "val"),
    }
    assert {k: (r["label"], r["split"]) for k, r in rows.items()} == expected
    fake = rows["id2_id0_0000"]
    assert fake["video_id"] == "celebdf/Celeb-synthesis/orig/id2_id0_0000"
    assert (fake["target_id"], fake["source_id"], fake["method"]) == ("id2_0000", "id0", "Celeb-synthesis")
    assert rows["00003"]["method"] == "YouTube-real" and rows["00003"]["target_id"] == "00003"
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in index["path"])
    assert set(index["quality"]) == {"orig"}
    assert CelebDF.frames_are_crops is False and CelebDF.embedded_subdir == "celebdf"


def test_celebdf_check_reports_counts_against_official(celeb_root):
    report = CelebDF(celeb_root).check()
    counts = report.counts.set_index(["split", "method"])["videos"]
    assert counts[("test", "Celeb-synthesis")] == 1 and counts[("val", "Celeb-synthesis")] == 2
    assert "Celeb-real/ holds 3 videos; the official release has 590." in report.problems
    assert any("yields 3 test videos; the official list has 518" in p for p in report.problems)
    assert not report.ok


def test_celebdf_v1_same_layout_compares_totals(celeb_root):
    index = get_dataset("celebdf_v1", celeb_root).build_index()
    assert set(index["dataset"]) == {"celebdf_v1"} and len(index) == len(CELEB_FILES)
    report = CelebDFv1(celeb_root).check()
    assert "5 real videos found; the official v1 release has 408." in report.problems


@pytest.mark.parametrize(
    ("line", "error", "fragment"),
    [
        ("0 Celeb-real/id1_0000.mp4", DatasetError, "contradicts its folder Celeb-real/"),
        ("1 ../outside.mp4", UnsafePathError, "line 1"),
        ("1 Celeb-real/id9_0000.mp4", DatasetError, "does not exist"),
        ("real Celeb-real/id1_0000.mp4", DatasetError, "is not '<0|1>"),
    ],
)
def test_celebdf_bad_test_list_is_refused_with_line(tmp_path, line, error, fragment):
    write_video(tmp_path / "Celeb-real/id1_0000.mp4")
    write_video(tmp_path / "Celeb-real/id2_0000.mp4")
    for d in ("YouTube-real", "Celeb-synthesis"):
        (tmp_path / d).mkdir()
    (tmp_path / "List_of_testing_videos.txt").write_text(line + "\n1 Celeb-real/id2_0000.mp4\n")
    adapter = CelebDF(tmp_path)
    index = adapter.build_index()  # the bad line is skipped, the rest is indexed
    assert [r.entry for r in adapter.rejected] == ["List_of_testing_videos.txt line 1"]
    assert fragment in adapter.rejected[0].reason
    assert index.set_index("video_id").at["celebdf/Celeb-real/orig/id2_0000", "split"] == "test"
    # a video named by a rejected line is in no split: it is neither a sure test nor a train video
    named = "id1_0000" in line
    assert ("celebdf/Celeb-real/orig/id1_0000" in set(index["video_id"])) == (not named)
    assert any(fragment in p for p in CelebDF(tmp_path).check().problems)  # check collects, never raises


def test_celebdf_missing_list_is_a_clear_error(tmp_path):
    for d in ("Celeb-real", "YouTube-real", "Celeb-synthesis"):
        (tmp_path / d).mkdir()
    with pytest.raises(DatasetError, match="List_of_testing_videos.txt is missing"):
        CelebDF(tmp_path).build_index()


# ------------------------------------------------------------------------------ DFDCP
DFDCP_ENTRIES = {
    "original_videos/100/100_A_001.mp4": {"label": "real", "set": "train"},
    "original_videos/101/101_B_002.mp4": {"label": "REAL", "set": "test"},
    "method_A/100/100_A/200_100_A_001.mp4": {"label": "fake", "set": "test"},
    "method_B/101/101_B/300_101_B_002.mp4": {"label": "Fake", "set": "train"},
}


def make_dfdcp(root: Path, entries: dict) -> None:
    for i, rel in enumerate(DFDCP_ENTRIES):
        write_video(root / rel, value=30 * i)
    (root / "dataset.json").write_text(json.dumps(entries))


def test_dfdcp_reads_labels_and_sets(tmp_path):
    make_dfdcp(tmp_path, DFDCP_ENTRIES)
    index = DFDCPreview(tmp_path).build_index()
    got = {r["video_id"]: (r["label"], r["split"], r["method"]) for r in index.to_dict("records")}
    assert got == {
        "dfdcp/original_videos/orig/100/100_A_001": (0, "train", "original_videos"),
        "dfdcp/original_videos/orig/101/101_B_002": (0, "test", "original_videos"),
        "dfdcp/method_A/orig/100/100_A/200_100_A_001": (1, "test", "method_A"),
        "dfdcp/method_B/orig/101/101_B/300_101_B_002": (1, "train", "method_B"),
    }
    assert DFDCPreview(tmp_path).check().counts["videos"].sum() == 4


@pytest.mark.parametrize("key", ["../elsewhere/x.mp4", "/etc/x.mp4", "method_A/../../x.mp4"])
def test_dfdcp_entry_outside_root_is_refused_naming_the_entry(tmp_path, key):
    root = tmp_path / "dfdcp"
    make_dfdcp(root, {**DFDCP_ENTRIES, key: {"label": "fake", "set": "test"}})
    adapter = DFDCPreview(root)
    assert len(adapter.build_index()) == 4  # the good entries are indexed
    assert [r.entry for r in adapter.rejected] == [f"dataset.json entry {key!r}"]
    assert re.search(r"dataset\.json entry '" + key.replace(".", r"\.") + "' points outside", adapter.rejected[0].reason)
    report = DFDCPreview(root).check()
    assert len(report.problems) == 1 and key in report.problems[0]
    assert report.counts["videos"].sum() == 4  # the good entries are still counted


def test_dfdcp_symlink_escaping_root_is_refused(tmp_path):
    root = tmp_path / "dfdcp"
    make_dfdcp(root, {**DFDCP_ENTRIES, "method_A/link.mp4": {"label": "fake", "set": "test"}})
    write_video(tmp_path / "secret.mp4")
    os.symlink(tmp_path / "secret.mp4", root / "method_A/link.mp4")
    adapter = DFDCPreview(root)
    assert str(tmp_path / "secret.mp4") not in set(adapter.build_index()["path"])
    assert [r.entry for r in adapter.rejected] == ["dataset.json entry 'method_A/link.mp4'"]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [({"label": "maybe", "set": "test"}, "expected 'fake' or 'real'"), ({"label": "fake", "set": "val"}, "expected 'train' or 'test'")],
)
def test_dfdcp_bad_label_or_set(tmp_path, entry, fragment):
    make_dfdcp(tmp_path, {**DFDCP_ENTRIES, "method_A/100/100_A/200_100_A_001.mp4": entry})
    adapter = DFDCPreview(tmp_path)
    assert len(adapter.build_index()) == 3
    assert len(adapter.rejected) == 1 and fragment in adapter.rejected[0].reason


# ------------------------------------------------------------------------------ DFDC
def make_dfdc(root: Path, labels_csv: str = "filename,label\naaa.mp4,1\nbbb.mp4,0\n") -> None:
    meta0 = {"r0.mp4": {"label": "REAL", "split": "train", "original": None}, "f0.mp4": {"label": "FAKE", "split": "train", "original": "r0.mp4"}}
    meta7 = {"f7.mp4": {"label": "FAKE", "split": "train", "original": "r0.mp4"}}
    for part, meta in (("dfdc_train_part_0", meta0), ("dfdc_train_part_7", meta7)):
        for name in meta:
            write_video(root / part / name)
        (root / part / "metadata.json").write_text(json.dumps(meta))
    for name in ("aaa.mp4", "bbb.mp4"):
        write_video(root / "test/videos" / name)
    (root / "test/labels.csv").write_text(labels_csv)


def test_dfdc_metadata_and_test_labels(tmp_path):
    make_dfdc(tmp_path)
    index = DFDC(tmp_path).build_index()
    got = {r["video_id"]: (r["label"], r["split"], r["target_id"]) for r in index.to_dict("records")}
    assert got == {
        "dfdc/real/orig/r0": (0, "train", "r0"),
        "dfdc/fake/orig/f0": (1, "train", "r0"),  # the fake's original is its target
        "dfdc/fake/orig/f7": (1, "train", "r0"),
        "dfdc/fake/orig/aaa": (1, "test", ""),  # labels.csv: 1 = fake
        "dfdc/real/orig/bbb": (0, "test", "bbb"),
    }
    report = DFDC(tmp_path).check()
    assert "2 of the 50 dfdc_train_part_* folders are present." in report.notes
    assert "test/ yields 2 videos; the official public test set has 5000." in report.problems


@pytest.mark.parametrize(
    ("csv_text", "error", "fragment"),
    [
        ("filename,label\naaa.mp4,2\nbbb.mp4,0\n", DatasetError, "line 2 has label '2'"),
        ("filename,label\n../../x.mp4,1\nbbb.mp4,0\n", UnsafePathError, "line 2 points outside"),
        ("name,fake\naaa.mp4,1\n", DatasetError, "header 'filename,label'"),
    ],
)
def test_dfdc_bad_labels_csv(tmp_path, csv_text, error, fragment):
    make_dfdc(tmp_path, csv_text)
    adapter = DFDC(tmp_path)
    if "header" in fragment:  # the file itself is unusable: a layout problem, raised
        with pytest.raises(error, match=fragment):
            adapter.build_index()
        return
    index = adapter.build_index()  # one bad line: skipped, the other line and the train parts kept
    assert set(index["video_id"]) == {"dfdc/real/orig/r0", "dfdc/fake/orig/f0", "dfdc/fake/orig/f7", "dfdc/real/orig/bbb"}
    assert [r.entry for r in adapter.rejected] == ["test/labels.csv line 2"] and fragment in adapter.rejected[0].reason


# ------------------------------------------------------------------------------ WildDeepfake
def wdf_frames(stem: str, cls: str, seq: str, numbers: list[int]) -> dict[str, bytes]:
    return {f"./{stem}/{cls}/{seq}/{n}.png": png_bytes(n) for n in numbers}


@pytest.fixture
def wdf_root(tmp_path) -> Path:
    root = tmp_path / "wdf"
    # written out of order (10 before 2): frames must come back in numeric order
    write_shard(root / "real_train/1.tar.gz", {**wdf_frames("1", "real", "0", [0, 1, 10, 2]), **wdf_frames("1", "real", "3", [5])})
    write_shard(root / "real_test/4.tar.gz", wdf_frames("4", "real", "0", [0, 1]))
    write_shard(root / "fake_train/2.tar.gz", {**wdf_frames("2", "fake", "7", [3, 4]), "./2/readme.txt": b"x"})
    write_shard(root / "fake_test/9.tar.gz", wdf_frames("9", "fake", "1", [0]))
    return root


def test_wdf_index_convention_and_labels(wdf_root):
    index = get_dataset("wdf", wdf_root).build_index()
    got = {r["video_id"]: (r["label"], r["split"], r["path"]) for r in index.to_dict("records")}
    shard = (wdf_root / "real_train/1.tar.gz").resolve()
    assert got["wdf/real/orig/real_train/1/1/0"] == (0, "train", f"{shard}::1/real/0")
    assert {k: v[:2] for k, v in got.items()} == {
        "wdf/real/orig/real_train/1/1/0": (0, "train"),
        "wdf/real/orig/real_train/1/1/3": (0, "train"),
        "wdf/real/orig/real_test/4/4/0": (0, "test"),
        "wdf/fake/orig/fake_train/2/2/7": (1, "train"),
        "wdf/fake/orig/fake_test/9/9/1": (1, "test"),
    }
    assert WildDeepfake.frames_are_crops is True
    report = WildDeepfake(wdf_root).check()
    assert any("'2/readme.txt'" in n for n in report.notes)
    assert "3 real sequences found; the official release has 3805." in report.problems


def test_wdf_read_sequence_in_frame_order(wdf_root):
    adapter = WildDeepfake(wdf_root)
    path = adapter.build_index().set_index("video_id").at["wdf/real/orig/real_train/1/1/0", "path"]
    frames = adapter.read_sequence(path)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 1, 2, 10]
    assert frames[0].shape == (8, 8, 3) and frames[0].dtype == np.uint8
    assert [int(f[0, 0, 0]) for f in read_sequence(path, indices=[3, 0])] == [10, 0]
    with pytest.raises(DatasetError, match="has 4 frames"):
        read_sequence(path, indices=[4])
    with pytest.raises(DatasetError, match="no frames of sequence '1/real/9'"):
        read_sequence(path.replace("1/real/0", "1/real/9"))
    assert split_sequence_path("/a::b/x.tar.gz::s/real/1") == (Path("/a::b/x.tar.gz"), "s/real/1")


def test_wdf_shard_outside_root_is_refused(wdf_root, tmp_path):
    outside = tmp_path / "elsewhere.tar.gz"
    write_shard(outside, wdf_frames("1", "real", "0", [0]))
    with pytest.raises(UnsafePathError, match="outside the dataset root"):
        WildDeepfake(wdf_root).read_sequence(f"{outside}::1/real/0")


def _member(name: str, kind: bytes, **attrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


@pytest.mark.parametrize(
    ("extra", "members", "fragment"),
    [
        ([], {"../evil.png": png_bytes(1)}, "member '../evil.png' contains '..'"),
        ([], {"/etc/evil.png": png_bytes(1)}, "member '/etc/evil.png' has an absolute path"),
        ([_member("1/real/0/5.png", tarfile.SYMTYPE, linkname="/etc/passwd")], {}, "member '1/real/0/5.png' is a symbolic link"),
        ([_member("1/real/0/6.png", tarfile.LNKTYPE, linkname="1/real/0/0.png")], {}, "member '1/real/0/6.png' is a hard link"),
        ([_member("1/real/0/dev", tarfile.CHRTYPE, devmajor=1, devminor=3)], {}, "member '1/real/0/dev' is a character device"),
        ([_member("1/real/0/fifo", tarfile.FIFOTYPE)], {}, "member '1/real/0/fifo' is a FIFO"),
    ],
)
def test_wdf_malicious_member_refuses_the_shard(wdf_root, extra, members, fragment):
    shard = wdf_root / "real_train/1.tar.gz"
    write_shard(shard, {**wdf_frames("1", "real", "0", [0, 1]), **members}, extra=extra)
    adapter = WildDeepfake(wdf_root)
    index = adapter.build_index()  # the shard is skipped whole, the other shards are indexed
    assert len(index) == 3 and not index["path"].str.contains("1.tar.gz").any()
    assert [r.entry for r in adapter.rejected] == ["real_train/1.tar.gz"]
    assert re.search(rf"Archive .*1\.tar\.gz {re.escape(fragment)}", adapter.rejected[0].reason)
    # even reading a good sequence of that shard is refused
    with pytest.raises(UnsafePathError, match=fragment):
        read_sequence(f"{shard.resolve()}::1/real/0")
    report = WildDeepfake(wdf_root).check()
    assert any(fragment in p for p in report.problems)
    assert len(report.counts) == 3  # the other shards are still indexed


def test_wdf_class_folder_mismatch_and_corrupt_shard(wdf_root):
    write_shard(wdf_root / "real_test/5.tar.gz", wdf_frames("5", "fake", "0", [0]))
    adapter = WildDeepfake(wdf_root)
    assert len(adapter.build_index()) == 5
    assert [r.entry for r in adapter.rejected] == ["real_test/5.tar.gz::5/fake/0"]
    assert "holds fake/ sequence '5/fake/0' but lies in real_test/" in adapter.rejected[0].reason
    (wdf_root / "real_test/5.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    adapter = WildDeepfake(wdf_root)
    assert len(adapter.build_index()) == 5
    assert [r.entry for r in adapter.rejected] == ["real_test/5.tar.gz"]
    assert re.search(r"5\.tar\.gz is corrupt or truncated", adapter.rejected[0].reason)


# ------------------------------------------------------------------------------ discovery
def test_each_layout_is_recognised_only_by_its_adapter(celeb_root, wdf_root, tmp_path):
    make_dfdcp(tmp_path / "dfdcp", DFDCP_ENTRIES)
    make_dfdc(tmp_path / "dfdc")
    roots = {"celebdf": celeb_root, "dfdcp": tmp_path / "dfdcp", "dfdc": tmp_path / "dfdc", "wdf": wdf_root}
    adapters = {"celebdf": CelebDF, "dfdcp": DFDCPreview, "dfdc": DFDC, "wdf": WildDeepfake}
    for name, root in roots.items():
        assert {a for a, cls in adapters.items() if cls.looks_like(root)} == {name}
    assert not CelebDFv1.looks_like(celeb_root)  # v1 only under its default_dirname
    assert {cls.default_dirname for cls in adapters.values()} == {"Celeb-DF-v2", "DFDCP", "DFDC", "WildDeepfake"}
    assert [cls.embedded_subdir for cls in adapters.values()] == ["celebdf", "dfdcp", None, "wdf"]


def test_wdf_sample_sequence_uses_linspace_positions(wdf_root):
    path = f"{(wdf_root / 'real_train/1.tar.gz').resolve()}::1/real/0"  # frames 0, 1, 2, 10
    frames, indices = sample_sequence(path, 3)
    assert indices.tolist() == [0, 2, 3]  # round(linspace(0, 3, 3)) = 0, 1.5 → 2, 3
    assert [int(f[0, 0, 0]) for f in frames] == [0, 2, 10]
    frames, indices = sample_sequence(path, 32)  # shorter sequence: each frame once
    assert indices.tolist() == [0, 1, 2, 3] and len(frames) == 4


def test_datasets_check_recognises_the_layout_or_asks_for_dataset(celeb_root, tmp_path, capsys):
    """Issue #18 item 5: `dfbench datasets check ROOT` without --dataset."""
    from dfbench.benchmark.cli import main

    make_dfdc(tmp_path / "dfdc")
    assert main(["datasets", "check", str(celeb_root)]) in (0, 1)
    assert capsys.readouterr().out.startswith(f"celebdf at {celeb_root}")
    assert main(["datasets", "check", str(tmp_path / "dfdc")]) in (0, 1)
    assert capsys.readouterr().out.startswith(f"dfdc at {tmp_path / 'dfdc'}")
    (tmp_path / "empty").mkdir()
    assert main(["datasets", "check", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'empty'} matches no known layout; pass --dataset NAME") and err.count("\n") == 1


def test_metadata_files_linked_out_of_the_root_are_refused(tmp_path):
    """Issue #18 item 1 for metadata: a test list or dataset.json that is a link to a file
    outside the root is refused, never read."""
    make_dfdcp(tmp_path / "dfdcp", DFDCP_ENTRIES)
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(DFDCP_ENTRIES))
    (tmp_path / "dfdcp" / "dataset.json").unlink()
    (tmp_path / "dfdcp" / "dataset.json").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="'dataset.json' under .* resolves outside the dataset root"):
        DFDCPreview(tmp_path / "dfdcp").build_index()
    root = tmp_path / "celeb"
    write_video(root / "Celeb-real/id1_0000.mp4")
    for d in ("YouTube-real", "Celeb-synthesis"):
        (root / d).mkdir()
    (tmp_path / "list.txt").write_text("1 Celeb-real/id1_0000.mp4\n")
    (root / "List_of_testing_videos.txt").symlink_to(tmp_path / "list.txt")
    with pytest.raises(UnsafePathError, match="'List_of_testing_videos.txt' under .* resolves outside"):
        CelebDF(root).build_index()
    assert any("resolves outside" in p for p in CelebDF(root).check().problems)
