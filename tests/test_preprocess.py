"""Decoding, face detection, aligned crops, the crop cache, bad input and load_frames."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest

from dfbench.benchmark.data import clear_index_memo, default_roots, load_frames
from dfbench.benchmark.errors import DatasetError
from dfbench.benchmark.preprocess import pipeline
from dfbench.benchmark.preprocess.cache import CropCache, CropParams
from dfbench.benchmark.preprocess.faces import FaceDetector, crop_frame, fill_missing, square_boxes
from dfbench.benchmark.preprocess.fixture import _photo, add_bad_videos, encode_video
from dfbench.benchmark.preprocess.pipeline import ensure_crops, preprocess
from dfbench.benchmark.preprocess.video import VideoReadError, read_frames, sample_indices
from dfbench.datasets.base import Selection
from dfbench.datasets.ffpp import FaceForensicsPP

PARAMS = CropParams(frames=6, size=64)
REALS, QUALS = ("youtube", "actors"), ("raw", "c23", "c40")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.fixture(scope="module")
def test_split(ffpp_fixture):
    """The test split's youtube/Deepfakes/NeuralTextures videos (2 reals, 4 fakes, 3 qualities)."""
    index = FaceForensicsPP(ffpp_fixture.root).build_index()
    return index, index[(index["split"] == "test") & (index["method"] != "actors")
                        & (index["method"] != "DeepFakeDetection")].reset_index(drop=True)


@pytest.fixture(scope="module")
def prepped(test_split, tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    index, rows = test_split
    cache = CropCache(tmp_path_factory.mktemp("cache"))
    report, entries = ensure_crops(rows, cache=cache, params=PARAMS, real_methods=REALS, qualities=QUALS,
                                   pool=index, progress=False, keep=True)
    torch.set_num_threads(before)
    return cache, report, entries


def test_sample_indices():
    assert sample_indices(100, 5).tolist() == [0, 25, 50, 74, 99]
    assert sample_indices(3, 8).tolist() == [0, 1, 2]  # never repeated frames
    assert sample_indices(0, 4).tolist() == []


def test_decoding_quality_order(ffpp_fixture):
    original = np.stack(ffpp_fixture.originals["youtube/000"])
    scores = {}
    for q in QUALS:
        path = ffpp_fixture.root / "original_sequences" / "youtube" / q / "videos" / "000.mp4"
        decoded = read_frames(path, count=ffpp_fixture.n_frames)
        assert decoded.frames.shape == original.shape and decoded.n_frames == ffpp_fixture.n_frames
        scores[q] = psnr(decoded.frames, original)
    assert scores["raw"] > scores["c23"] > scores["c40"], scores
    assert scores["raw"] > 35  # lossless YUV; only 4:2:0 chroma and colour conversion lose


def test_read_only_wanted_frames(ffpp_fixture):
    path = ffpp_fixture.root / "original_sequences" / "youtube" / "raw" / "videos" / "001.mp4"
    some = read_frames(path, indices=[5, 1, 5])
    every = read_frames(path, count=100)
    assert some.indices.tolist() == [5, 1, 5]
    assert np.array_equal(some.frames[0], every.frames[5]) and np.array_equal(some.frames[1], every.frames[1])
    with pytest.raises(VideoReadError, match="has 8 frames but frame 8"):
        read_frames(path, indices=[8])


def test_mtcnn_finds_public_domain_faces(one_torch_thread):
    detector = FaceDetector()
    for name in ("astronaut", "grace"):
        det = detector.detect(_photo(name)[None])
        assert det.face_found[0] and det.probs[0] > 0.99, name
        x1, y1, x2, y2 = det.boxes[0]
        assert 60 < x2 - x1 < 260 and (det.landmarks[0][:, 0] > x1).all()


def test_fill_missing_and_square_box_padding():
    assert fill_missing(np.array([False, True, False, False, True]), np.array([0, 10, 20, 31, 40])).tolist() == [
        1, 1, 1, 4, 4]
    assert fill_missing(np.array([False, False]), np.array([0, 1])).tolist() == [-1, -1]
    box = square_boxes(np.array([[-10.0, 0, 30, 20]]), 1.5)[0]  # 40 wide → side 60, centred (10, 10)
    assert np.allclose(box, [-20, -20, 40, 40])
    frame = np.full((50, 50, 3), 200, np.uint8)
    crop = crop_frame(frame, box, 60)
    assert (crop[:20] == 0).all() and (crop[:, :20] == 0).all() and (crop[25:, 25:] == 200).all()


@pytest.mark.parametrize("box", [(10, 10, 60, 60), (-30, -20, 50, 60), (140, 100, 200, 160), (-500, -500, -400, -400),
                                 (20.4, 30.6, 99.5, 109.7)])
def test_crop_frame_gives_pils_crop_of_the_whole_frame(box):
    """crop_frame cuts the patch in numpy (no whole-frame copy into PIL); the pixels must be
    those of PIL's own crop of the whole frame (zeros past the border), resized the same way."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for frame in (rng.integers(0, 256, (120, 160, 3)).astype(np.uint8), rng.integers(0, 256, (120, 160)).astype(np.uint8)):
        x0, y0 = int(np.floor(box[0] + 0.5)), int(np.floor(box[1] + 0.5))
        side = int(np.floor(box[2] - box[0] + 0.5))
        patch = Image.fromarray(frame).crop((x0, y0, x0 + side, y0 + side))
        for size in (side, 32, 299):
            want = np.asarray(patch if size == side else patch.resize((size, size), Image.Resampling.BICUBIC))
            assert np.array_equal(crop_frame(frame, np.array(box, float), size), want)


def test_boxes_shared_across_qualities_and_with_fakes(prepped):
    _, report, entries = prepped
    assert not report.failed and report.detected_references == 2  # youtube 004 and 005 at raw only
    ref = entries["ffpp/youtube/raw/004"]
    assert ref["face_found"].all() and (ref["probs"] > 0.9).all()
    for vid in ("ffpp/youtube/c40/004", "ffpp/youtube/c23/004", "ffpp/Deepfakes/c23/004_005",
                "ffpp/NeuralTextures/c40/004_005"):
        assert np.array_equal(entries[vid]["boxes"], ref["boxes"]), vid
        assert np.array_equal(entries[vid]["frame_indices"], ref["frame_indices"])
    assert not np.array_equal(entries["ffpp/youtube/raw/005"]["boxes"], ref["boxes"])
    # aligned pixels: raw and c40 crops of the same frame differ by compression only
    assert psnr(entries["ffpp/youtube/c40/004"]["crops"], ref["crops"]) > 22
    assert psnr(entries["ffpp/youtube/raw/005"]["crops"], ref["crops"]) < 15
    # landmarks are in crop pixels and the face is centred in the crop
    lm = ref["landmarks"]
    assert ((lm > 0) & (lm < PARAMS.size)).all() and abs(lm[..., 0].mean() - PARAMS.size / 2) < PARAMS.size / 6


def test_fake_crops_carry_masks(prepped):
    _, _, entries = prepped
    fake = entries["ffpp/Deepfakes/raw/004_005"]
    assert fake["mask"].shape == fake["crops"].shape[:3]
    inside = fake["mask"] > 128
    assert 0.05 < inside.mean() < 0.9
    real = entries["ffpp/youtube/raw/004"]["crops"].astype(int)
    diff = np.abs(fake["crops"].astype(int) - real).mean(-1)
    assert diff[inside].mean() > 5 * max(diff[~inside].mean(), 0.5)  # the fake differs where its mask says
    assert "mask" not in entries["ffpp/NeuralTextures/raw/004_005"]


def test_cache_hit_does_no_decoding_or_detection(prepped, test_split, monkeypatch):
    cache, _, entries = prepped
    index, rows = test_split

    def boom(*args, **kwargs):
        raise AssertionError("decoded or detected on a cached pass")

    monkeypatch.setattr(pipeline, "read_frames", boom)
    monkeypatch.setattr(pipeline.FaceDetector, "detect", boom)
    report, again = ensure_crops(rows, cache=cache, params=PARAMS, real_methods=REALS, qualities=QUALS,
                                 pool=index, progress=False, keep=True)
    assert report.cached == len(rows) and report.processed == 0
    assert np.array_equal(again["ffpp/Deepfakes/c40/005_004"]["crops"], entries["ffpp/Deepfakes/c40/005_004"]["crops"])


def test_other_crop_size_reuses_cached_detections(prepped, test_split, monkeypatch):
    cache, _, entries = prepped
    index, rows = test_split
    monkeypatch.setattr(pipeline.FaceDetector, "detect", lambda *a, **k: pytest.fail("detected again"))
    one = rows[rows["video_id"] == "ffpp/youtube/c23/005"]
    report, got = ensure_crops(one, cache=cache, params=CropParams(frames=6, size=32), real_methods=REALS,
                               qualities=QUALS, pool=index, progress=False, keep=True)
    assert report.processed == 1 and report.detected_references == 0
    assert got["ffpp/youtube/c23/005"]["crops"].shape == (6, 32, 32, 3)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_entry_is_rebuilt(prepped, test_split, damage):
    cache, _, entries = prepped
    index, rows = test_split
    one = rows[rows["video_id"] == "ffpp/youtube/c40/005"]
    key = pipeline.ensure_crops(one, cache=cache, params=PARAMS, real_methods=REALS, qualities=QUALS, pool=index,
                                progress=False)[0].keys["ffpp/youtube/c40/005"]
    path = cache.path("crops", key)
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert cache.get("crops", key) is None and not path.exists()  # never returned
    path.write_bytes(bytes(blob))
    report, got = ensure_crops(one, cache=cache, params=PARAMS, real_methods=REALS, qualities=QUALS, pool=index,
                               progress=False, keep=True)
    assert report.rebuilt_corrupt == [str(path)] and report.processed == 1
    assert np.array_equal(got["ffpp/youtube/c40/005"]["crops"], entries["ffpp/youtube/c40/005"]["crops"])
    assert cache.get("crops", key) is not None


def test_concurrent_writers_leave_a_valid_entry(tmp_path):
    cache = CropCache(tmp_path)
    arrays = [{"crops": np.full((4, 8, 8, 3), i, np.uint8)} for i in range(2)]
    threads = [threading.Thread(target=lambda a=a: [cache.put("crops", "ab" * 32, a) for _ in range(20)])
               for a in arrays]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = cache.get("crops", "ab" * 32)
    assert got is not None and got["crops"].std() == 0
    assert not [p for p in cache.path("crops", "ab" * 32).parent.iterdir() if p.name.startswith(".tmp")]


def test_bad_videos_fail_clearly_and_the_rest_succeeds(ffpp_copy, tmp_path, one_torch_thread, capsys):
    bad = add_bad_videos(ffpp_copy)
    index = FaceForensicsPP(ffpp_copy).build_index()
    rows = index[(index["quality"] == "c23") & index["method"].isin(["youtube", "Deepfakes"])
                 & index["video_id"].str.contains("00[4-7]")]
    report = preprocess(rows, cache=CropCache(tmp_path / "cache"), params=PARAMS, adapter=FaceForensicsPP(ffpp_copy),
                        pool=index, progress=True)
    assert set(report.failed) == {"ffpp/youtube/c23/006", "ffpp/youtube/c23/007", "ffpp/Deepfakes/c23/006_007"}
    assert report.failed["ffpp/youtube/c23/006"].startswith("no face") and str(bad["no_face"]) in report.failed[
        "ffpp/youtube/c23/006"]
    assert report.failed["ffpp/Deepfakes/c23/006_007"].startswith("no face")
    assert str(bad["truncated"]) in report.failed["ffpp/youtube/c23/007"]
    assert "truncated" in report.failed["ffpp/youtube/c23/007"]
    assert report.ok == len(rows) - 3 and report.frames == PARAMS.frames * report.ok
    assert "FAILED ffpp/youtube/c23/007" in capsys.readouterr().err


def test_frames_without_face_borrow_the_nearest_box(tmp_path, one_torch_thread):
    face = np.asarray(
        __import__("PIL.Image", fromlist=["Image"]).fromarray(_photo("astronaut")[0:256, 110:366]).resize((128, 128))
    )
    frames = [np.full_like(face, 90) if t < 3 else face for t in range(8)]
    path = encode_video(frames, tmp_path / "v" / "x.mp4", 10)
    row = {"dataset": "toy", "split": "test", "video_id": "toy/real/c23/x", "path": str(path), "label": 0,
           "method": "real", "quality": "c23", "target_id": "x", "source_id": "x", "mask_path": ""}
    report, got = ensure_crops(pd.DataFrame([row]), cache=CropCache(tmp_path / "c"), params=CropParams(frames=8, size=32),
                               real_methods=("real",), qualities=("c23",), progress=False, keep=True)
    entry = got["toy/real/c23/x"]
    assert entry["face_found"].tolist() == [False] * 3 + [True] * 5
    assert entry["box_frame"].tolist() == [3, 3, 3, 3, 4, 5, 6, 7]
    assert np.array_equal(entry["boxes"][0], entry["boxes"][3])
    assert any("3 of 8 frames have no face" in n for n in report.notes)


@pytest.fixture(scope="module")
def loaded(ffpp_fixture, prepped):
    cache = prepped[0]
    clear_index_memo()
    sel = [Selection("ffpp", "test", methods=("Deepfakes",), reals=("youtube",), qualities=("raw", "c23", "c40"))]
    return load_frames(sel, roots={"ffpp": ffpp_fixture.root}, cache=cache, crop=PARAMS,
                       requires=("paired_real", "mask", "landmarks", "qualities"), progress=False)


def test_load_frames_extras(loaded):
    f = loaded
    n_videos = 2 + 2  # youtube 004, 005 and Deepfakes 004_005, 005_004: one row per (video, frame)
    assert len(f) == n_videos * PARAMS.frames and f.meta["video_id"].nunique() == n_videos
    assert set(f.meta["quality"]) == {"raw"} and f.attrs["qualities"] == ["raw", "c23", "c40"]
    assert f.extras["qualities"].shape == (len(f), 3, 64, 64, 3)
    assert np.array_equal(f.extras["qualities"][:, 0], f.images)
    assert {"video_id", "frame", "label", "dataset", "method", "quality", "face_found", "target_id", "source_id",
            "split"} <= set(f.meta.columns)
    fake = (f.meta["video_id"] == "ffpp/Deepfakes/raw/004_005").to_numpy()
    real = (f.meta["video_id"] == "ffpp/youtube/raw/004").to_numpy()
    assert np.array_equal(f.extras["paired_real"][fake], f.images[real])  # pixel-aligned with its target
    assert np.array_equal(f.extras["paired_real"][real], f.images[real])
    assert f.extras["mask"][fake].max() > 200 and f.extras["mask"][real].max() == 0
    assert f.extras["landmarks"].shape == (len(f), 5, 2)
    assert f[0]["qualities"].shape == (3, 3, 64, 64) and f.attrs["failed"] == []


def test_load_frames_leaves_failed_videos_out(ffpp_copy, tmp_path, one_torch_thread):
    add_bad_videos(ffpp_copy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = load_frames([Selection("ffpp", "test", methods=("Deepfakes",), reals=("youtube",), qualities=("c23",))],
                        roots={"ffpp": ffpp_copy}, cache=CropCache(tmp_path / "c"), crop=PARAMS, progress=False)
    assert any("yield no frames" in str(w.message) for w in caught)
    failed = {r.video_id: r for r in f.attrs["failed"]}
    assert set(failed) == {"ffpp/youtube/c23/006", "ffpp/youtube/c23/007", "ffpp/Deepfakes/c23/006_007"}
    assert [failed[v].label for v in sorted(failed)] == [1, 0, 0]  # typed records carry the label for scoring
    assert all(r.reason for r in failed.values())
    assert not f.meta["video_id"].isin(list(failed)).any()
    assert f.meta["video_id"].nunique() == 4


def test_load_frames_missing_quality_is_an_error(ffpp_copy, tmp_path):
    import shutil

    shutil.rmtree(ffpp_copy / "original_sequences" / "youtube" / "c40")
    with pytest.raises(DatasetError, match="has no c40 version"):
        load_frames([Selection("ffpp", "test", methods=())], roots={"ffpp": ffpp_copy},
                    cache=CropCache(tmp_path / "c"), crop=PARAMS, requires=("qualities",), progress=False)


def test_default_roots(ffpp_fixture, tmp_path):
    assert default_roots(ffpp_fixture.root.parent, ["ffpp"]) == {"ffpp": ffpp_fixture.root}
    assert default_roots(ffpp_fixture.root, ["ffpp"]) == {"ffpp": ffpp_fixture.root}
    # a folder that holds no FF++ gives no root: the runner then names the dataset and --data-root
    assert default_roots(tmp_path, ["ffpp"]) == {}
