"""FFIW10K: the adapter on hand-made layouts, the embedded stand-in read back by it, the c23/c40
re-encoding of single-quality datasets, and QAD's coverage with both."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.datasets.base import Selection
from dfbench.datasets.ffiw10k import FFIW10K


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00")


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """train and val in the release's flat folders, test from the test release in SBI's
    ``videos/`` arrangement, masks beside them (not read) and a stray file."""
    root = tmp_path / "FFIW10K-v1-release"
    _touch(
        root,
        "source/train/train_00000000.mp4",
        "source/train/train_00000001.mp4",
        "target/train/train_00000000.mp4",
        "target/train/train_00000001.mp4",
        "source/val/val_00000000.mp4",
        "target/val/val_00000000.mp4",
        "source/test/videos/test_00000000.mp4",
        "target/test/videos/test_00000000.mp4",
        "target_mask/train/train_00000000.mp4",
        "source/train/readme.txt",
    )
    return root


# ------------------------------------------------------------------------------ adapter
def test_rows_labels_and_splits(layout: Path) -> None:
    index = FFIW10K(layout).build_index()
    assert len(index) == 8
    got = {(r.split, r.method, r.label, r.video_id) for r in index.itertuples()}
    assert got == {
        ("train", "source", 0, "ffiw10k/source/orig/train_00000000"),
        ("train", "source", 0, "ffiw10k/source/orig/train_00000001"),
        ("train", "target", 1, "ffiw10k/target/orig/train_00000000"),
        ("train", "target", 1, "ffiw10k/target/orig/train_00000001"),
        ("val", "source", 0, "ffiw10k/source/orig/val_00000000"),
        ("val", "target", 1, "ffiw10k/target/orig/val_00000000"),
        ("test", "source", 0, "ffiw10k/source/orig/test_00000000"),
        ("test", "target", 1, "ffiw10k/target/orig/test_00000000"),
    }
    assert set(index["quality"]) == {"orig"}
    test_real = index[index["video_id"] == "ffiw10k/source/orig/test_00000000"].iloc[0]
    assert test_real["path"] == str((layout / "source/test/videos/test_00000000.mp4").resolve())
    # a real is its own target; a fake names none (the release does not pair them)
    fakes = index[index["label"] == 1]
    assert set(fakes["target_id"]) == {""}
    assert set(index.loc[index["label"] == 0, "target_id"]) == {"train_00000000", "train_00000001", "val_00000000", "test_00000000"}
    assert FFIW10K.looks_like(layout) and not FFIW10K.looks_like(layout / "source")


def test_a_link_out_of_the_root_is_refused(layout: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    _touch(outside, "secret.mp4", "split/x.mp4")
    (layout / "source/train/evil.mp4").symlink_to(outside / "secret.mp4")
    shutil.rmtree(layout / "target/val")
    (layout / "target/val").symlink_to(outside / "split")  # a whole split folder leading out
    adapter = FFIW10K(layout)
    index = adapter.build_index()
    assert not any("evil" in v or "/x" in v for v in index["video_id"])
    rejected = {r.entry: r.reason for r in adapter.rejected}
    assert set(rejected) == {"source/train/evil.mp4", "target/val/x.mp4"}
    assert all("outside the dataset root" in reason for reason in rejected.values())
    report = adapter.check()
    assert any("evil.mp4" in p for p in report.problems)


def test_a_missing_folder_is_one_clear_error(layout: Path) -> None:
    shutil.rmtree(layout / "target")
    with pytest.raises(DatasetError, match=r"Folder .*target is missing; the official FFIW10K layout has target/") as err:
        FFIW10K(layout).build_index()
    assert "\n" not in str(err.value)
    report = FFIW10K(layout).check()
    assert not report.ok and any("target is missing" in p for p in report.problems)


def test_an_empty_root_and_a_missing_root(tmp_path: Path) -> None:
    (tmp_path / "empty/source").mkdir(parents=True)
    (tmp_path / "empty/target").mkdir()
    with pytest.raises(DatasetError, match="No .mp4 video under"):
        FFIW10K(tmp_path / "empty").build_index()
    with pytest.raises(DatasetError, match="does not exist"):
        FFIW10K(tmp_path / "absent").build_index()


def test_a_name_in_two_splits_is_rejected(layout: Path) -> None:
    _touch(layout, "source/val/train_00000000.mp4")
    adapter = FFIW10K(layout)
    index = adapter.build_index()
    assert (index["video_id"] == "ffiw10k/source/orig/train_00000000").sum() == 1
    assert index.loc[index["video_id"] == "ffiw10k/source/orig/train_00000000", "split"].item() == "train"
    assert [r.entry for r in adapter.rejected] == ["source/val/train_00000000.mp4"]


def test_check_reports_official_counts_and_the_missing_test_release(layout: Path) -> None:
    shutil.rmtree(layout / "source/test")
    shutil.rmtree(layout / "target/test")
    report = FFIW10K(layout).check()
    assert "source/val/ holds 1 videos; the official release has 250." in report.problems
    assert "target/val/ holds 1 videos; the official release has 250." in report.problems
    assert any("FFIW10K-v1-release-test" in n and "source/test/" in n for n in report.notes)
    counts = report.counts.set_index(["split", "method"])
    assert counts.loc[("val", "source"), "official"] == 250
    assert counts.loc[("train", "target"), "videos"] == 2


# ------------------------------------------------------------------------------ re-encoding
def test_reencoded_rows_only_for_single_quality_video_datasets(layout: Path) -> None:
    from dfbench.benchmark.preprocess.reencode import offered_qualities, with_reencoded
    from dfbench.datasets import DATASETS

    assert offered_qualities(FFIW10K) == ("orig", "c23", "c40")
    assert offered_qualities(DATASETS.get("celebdf")) == ("orig", "c23", "c40")
    assert offered_qualities(DATASETS.get("ffpp")) == DATASETS.get("ffpp").qualities  # has its own c23/c40
    assert offered_qualities(DATASETS.get("wdf")) == DATASETS.get("wdf").qualities  # face-crop archives

    index = with_reencoded(FFIW10K(layout).build_index(), FFIW10K)
    assert len(index) == 24
    c40 = index[index["quality"] == "c40"]
    assert set(c40["reencode"]) == {"c40"} and set(index.loc[index["quality"] == "orig", "reencode"]) == {""}
    row = c40[c40["video_id"] == "ffiw10k/target/c40/val_00000000"].iloc[0]
    orig = index[index["video_id"] == "ffiw10k/target/orig/val_00000000"].iloc[0]
    assert (row["path"], row["label"], row["split"]) == (orig["path"], orig["label"], orig["split"])

    # a selection naming no quality gets the videos as shipped, never the re-encodings
    plain = Selection("ffiw10k", "val").apply(index, FFIW10K.real_methods)
    assert set(plain["quality"]) == {"orig"} and len(plain) == 2
    named = Selection("ffiw10k", "val", qualities=("c23", "c40")).apply(index, FFIW10K.real_methods)
    assert sorted(named["quality"]) == ["c23", "c23", "c40", "c40"]


def test_protocol_validation_knows_the_reencoded_qualities() -> None:
    from dfbench.benchmark.protocol import DataSpec
    from dfbench.benchmark.validate import check_data

    check_data([DataSpec("celebdf", qualities=("orig", "c23", "c40"))], "t")
    check_data([DataSpec("ffiw10k", qualities=("c40",))], "t")
    with pytest.raises(ConfigError, match=r"qualities: 'c40' is not one of"):
        check_data([DataSpec("wdf", qualities=("c40",))], "t")


def _write(path: Path, frames: np.ndarray, quality: str = "raw") -> Path:
    from dfbench.datasets.synth.encode import write_video

    write_video(path, frames, quality)
    return path


def test_a_c40_reencode_differs_and_keeps_the_frames(ffpp_fixture, tmp_path: Path) -> None:
    from dfbench.benchmark.preprocess.reencode import read_reencoded, reencode_video
    from dfbench.benchmark.preprocess.video import count_frames, read_frames

    src = ffpp_fixture.root / "original_sequences/youtube/c23/videos/000.mp4"
    out = tmp_path / "000_c40.mp4"
    n, w, h = reencode_video(src, out, "c40")
    assert (n, w, h) == (ffpp_fixture.n_frames, ffpp_fixture.size, ffpp_fixture.size)
    assert count_frames(out) == count_frames(src) == ffpp_fixture.n_frames
    original = read_frames(src, count=n).frames.astype(np.float32)
    again = read_reencoded(src, "c40", count=n)
    assert again.frames.shape == original.shape and again.n_frames == n
    diff = np.abs(again.frames.astype(np.float32) - original).mean()
    assert diff > 0.5  # crf 40 visibly changes the pixels ...
    assert diff < 20  # ... of the same picture
    c23 = read_reencoded(src, "c23", count=n).frames.astype(np.float32)
    assert np.abs(c23 - original).mean() < diff  # crf 23 stays closer than crf 40


def test_an_odd_sized_video_keeps_its_size(tmp_path: Path) -> None:
    from dfbench.benchmark.preprocess.reencode import read_reencoded

    yy, xx = np.mgrid[:75, :97]
    picture = np.stack([xx * 2.5, yy * 3.0, 255 - xx * 2.5], -1).astype(np.uint8)  # smooth ramps
    frames = np.repeat(picture[None], 5, axis=0)
    src = _write(tmp_path / "odd.mp4", frames, "raw")
    got = read_reencoded(src, "c23", count=5)
    assert got.frames.shape == (5, 75, 97, 3) and (got.width, got.height) == (97, 75)
    # the padding is cut off, not the picture shifted: each pixel is close to its original
    assert np.abs(got.frames.astype(np.float32) - frames).mean() < 4


def test_an_undecodable_source_is_a_one_line_failure(tmp_path: Path) -> None:
    from dfbench.benchmark.preprocess.reencode import read_reencoded
    from dfbench.benchmark.preprocess.video import VideoReadError

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoReadError, match="bad.mp4 cannot be opened"):
        read_reencoded(bad, "c40", count=4)


def _ffiw_from_fixture(ffpp_fixture, root: Path) -> Path:
    """An FFIW10K layout holding the photo fixture's c23 videos (faces MTCNN finds)."""
    videos = ffpp_fixture.root / "original_sequences/youtube/c23/videos"
    fakes = ffpp_fixture.root / "manipulated_sequences/Deepfakes/c23/videos"
    for split, real, fake in (("test", "004", "004_005"), ("val", "002", "002_003")):
        for folder, src in (("source", videos / f"{real}.mp4"), ("target", fakes / f"{fake}.mp4")):
            (root / folder / split).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, root / folder / split / f"{split}_00000000.mp4")
    return root


def test_reencoded_crops_are_cached_per_quality(ffpp_fixture, tmp_path: Path, one_torch_thread) -> None:
    from dfbench.benchmark import data
    from dfbench.benchmark.preprocess.cache import CropCache, CropParams

    root = _ffiw_from_fixture(ffpp_fixture, tmp_path / "FFIW10K-v1-release")
    cache = CropCache(tmp_path / "cache")
    data.clear_index_memo()
    sel = Selection("ffiw10k", "test", qualities=("orig", "c23", "c40"))
    frames = data.load_frames(
        [sel], roots={"ffiw10k": root}, cache=cache, crop=CropParams(frames=4, size=64),
        requires=("qualities",), progress=False, in_memory=True,
    )
    assert frames.attrs["qualities"] == ["orig", "c23", "c40"]
    stack = np.asarray(frames.extras["qualities"])
    assert stack.shape == (8, 3, 64, 64, 3)  # 2 videos x 4 frames, 3 qualities
    orig, c40 = stack[:, 0].astype(np.float32), stack[:, 2].astype(np.float32)
    assert np.abs(orig - c40).mean() > 0.5  # the c40 crops are of the re-encoded video ...
    # ... cut with the original's boxes: the same picture, aligned
    assert np.abs(orig - c40).mean() < 20

    adapter, index = data.dataset_index("ffiw10k", root)
    rows = index[index["split"] == "test"]
    from dfbench.benchmark.preprocess.pipeline import ensure_crops

    report, _ = ensure_crops(
        rows, cache=cache, params=CropParams(frames=4, size=64), real_methods=adapter.real_methods,
        qualities=adapter.qualities, pool=index, progress=False,
    )
    assert report.total == 6 and report.cached == 6 and not report.failed  # nothing decoded again
    keys = report.keys
    name = "ffiw10k/source/{}/test_00000000"
    assert len({keys[name.format(q)] for q in ("orig", "c23", "c40")}) == 3
    data.clear_index_memo()


# ------------------------------------------------------------------------------ stand-in
def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_the_stand_in_is_read_back_by_the_adapter(tmp_path: Path, one_torch_thread) -> None:
    from dfbench.datasets.synth import ffiw, standins
    from dfbench.datasets.synth.ffpp import read_marker

    assert standins.load_standin(FFIW10K.embedded_generator) is ffiw.STANDIN  # the one on-demand hook
    out = standins.generate_standin(ffiw.STANDIN, tmp_path / "a" / "ffiw10k", scale="tiny", progress=False)
    marker = read_marker(out)
    assert marker["generator"] == "dfbench synthetic FFIW10K-like set"
    assert marker["version"] == ffiw.FFIW_GENERATOR_VERSION and marker["scale"] == "tiny"
    split_counts = {"train": 2, "val": 1, "test": 1}  # FFIW_SCALES["tiny"], per class
    assert marker["counts"] == {f"{side}/{split}": n for side in ("source", "target") for split, n in split_counts.items()}
    assert standins.standin_complete(out, ffiw.STANDIN, "tiny", 0)
    assert not standins.standin_complete(out, ffiw.STANDIN, "mini", 0)
    index = FFIW10K(out).build_index()
    counts = index.groupby(["split", "method", "label"]).size().to_dict()
    assert counts == {
        ("test", "source", 0): 1, ("test", "target", 1): 1,
        ("train", "source", 0): 2, ("train", "target", 1): 2,
        ("val", "source", 0): 1, ("val", "target", 1): 1,
    }
    from dfbench.benchmark.preprocess.video import read_frames

    real = read_frames(out / "source/train/train_00000000.mp4", count=6)
    fake = read_frames(out / "target/train/train_00000000.mp4", count=6)
    assert real.frames.shape == fake.frames.shape == (6, 96, 128, 3)
    assert np.abs(real.frames.astype(np.float32) - fake.frames).mean() > 1.0  # the face is swapped
    before = _digest(out)
    kept = standins.generate_standin(ffiw.STANDIN, out, scale="tiny", progress=False)
    assert kept == out and _digest(out) == before  # kept
    again = standins.generate_standin(ffiw.STANDIN, tmp_path / "b" / "ffiw10k", scale="tiny", progress=False)
    assert _digest(again) == before  # deterministic


def test_the_stand_in_is_made_only_for_runs_that_need_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dfbench.datasets.synth as synth
    from dfbench.benchmark import data
    from dfbench.datasets.synth import ffiw, standins
    from dfbench.datasets.synth.ffpp import MARKER

    monkeypatch.setenv("DFBENCH_DATA", str(tmp_path / "data"))
    made: list[tuple[str, Path, str]] = []

    def fake_generate(standin, out, *, scale, seed=0, progress=True):  # records instead of rendering
        made.append((standin.label, Path(out), scale))
        out.mkdir(parents=True)
        marker = {"generator": f"dfbench synthetic {standin.label} set", "version": standin.version, "scale": scale, "seed": seed}
        (out / MARKER).write_text(json.dumps(marker))
        return out

    monkeypatch.setattr(standins, "generate_standin", fake_generate)
    monkeypatch.setattr(synth, "ensure_embedded_data", lambda scale, progress=True: None)
    data.default_roots(None, ["ffpp", "celebdf"], progress=False)
    assert made == []
    roots = data.default_roots(None, ["ffpp", "ffiw10k"], progress=False)
    folder = tmp_path / "data" / "mini" / "ffiw10k"
    assert made == [(ffiw.STANDIN.label, folder, "mini")]
    assert roots["ffiw10k"] == folder
    data.default_roots(None, ["ffiw10k"], progress=False)
    assert len(made) == 1  # kept: its marker matches


# ------------------------------------------------------------------------------ coverage
def test_qad_table5_coverage_against_a_hand_count() -> None:
    """Table 5 prints 6 rows (ERM and QAD on ResNet-18, ResNet-34, EfficientNet-B0) x 8 columns
    (NT, DF, F2F, FS, FSH, CDFv2, FFIW10K, Avg) = 48 numbers. dfbench has a cell for every
    dataset column (quality_agnostic, erm/qad with --backbone): 6 x 7 = 42, among them the
    12 CDFv2 and FFIW10K numbers that need the self-compressed c23/c40 versions."""
    from dfbench.benchmark.leaderboard import load_reference
    from dfbench.benchmark.papers import coverage_rows

    ref = load_reference()
    rows = coverage_rows(ref[(ref["paper"] == "qad") & (ref["table"] == "Table 5")])
    assert len(rows) == 48
    columns = rows[rows["test_data"] != "Avg"]
    assert len(columns) == 42 and columns["covered"].all()
    new = columns[columns["test_data"].isin(["CDFv2", "FFIW10K"])]
    assert len(new) == 12
    assert all("quality_agnostic (paper)" in c for c in new["covered_by"])
    assert pd.Series(new["method"]).value_counts().to_dict() == {"ERM": 6, "QAD": 6}


def test_qad_tables_1_to_3_count_the_new_columns() -> None:
    from dfbench.benchmark.leaderboard import load_reference
    from dfbench.benchmark.papers import coverage_rows

    ref = load_reference()
    qad = ref[(ref["paper"] == "qad") & ref["test_data"].isin(["CDFv2", "FFIW10K"])]
    rows = coverage_rows(qad)
    covered = rows[rows["covered"]].groupby("table").size().to_dict()
    # Tables 1, 2: QAD-R, QAD-E and Rössler et al. (Xception = erm) per dataset; Table 3:
    # ERM [x3] and QAD on ResNet-50 and EfficientNet-B1 per dataset; Table 5: 6 per dataset
    assert covered == {"Table 1": 6, "Table 2": 6, "Table 3": 8, "Table 5": 12}
    # no uncovered number of these columns blames a missing adapter or compressed version
    reasons = set(rows.loc[~rows["covered"], "reason"])
    assert not any(r.startswith(("no dataset adapter", "no compressed version")) for r in reasons)


def test_qad_takes_a_single_quality_dataset_best_quality_as_raw() -> None:
    """QAD's default qualities are (raw, c23, c40); Celeb-DF v2 / FFIW10K give (orig, c23, c40):
    orig (the paper's "raw version") takes the first role, c23/c40 must still be there."""
    import torch

    from dfbench.benchmark.frames import FrameSet
    from dfbench.detectors.qad import AlignedQualities

    n = 4
    stack = np.stack([np.full((n, 8, 8, 3), v, np.uint8) for v in (10, 20, 30)], axis=1)  # (N, Q, H, W, 3)
    meta = pd.DataFrame({"video_id": [f"v{i}" for i in range(n)], "frame": 0, "label": [0, 1, 0, 1], "quality": "orig"})
    frames = FrameSet(stack[:, 0], meta, {"qualities": stack}, {"qualities": ["orig", "c23", "c40"]})
    data = AlignedQualities(frames, ("raw", "c23", "c40"))
    assert data.qualities == ("orig", "c23", "c40")
    assert data[0]["qualities"][:, 0, 0, 0].tolist() == [10, 20, 30]
    assert isinstance(data[0]["qualities"], torch.Tensor)
    two = FrameSet(stack[:, 0], meta, {"qualities": stack[:, :2]}, {"qualities": ["orig", "c23"]})
    with pytest.raises(ConfigError, match="lack quality 'c40'"):
        AlignedQualities(two, ("raw", "c23", "c40"))
