"""The embedded Celeb-DF-, DFDCP- and WildDeepfake-like sets: official layouts read by the real
adapters, expected counts and labels, determinism, atomic writes, and faces MTCNN finds.

Uses the ``tiny`` scale (about 5 s to generate); the ``mini`` scale's timing and detection
rate are measured outside the suite (see docs/synthetic_cross_dataset.md).
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import dfbench  # noqa: F401  (torchvision guard first)
from dfbench.benchmark.data import clear_index_memo, load_frames
from dfbench.benchmark.errors import DatasetError
from dfbench.benchmark.preprocess.cache import CropCache, CropParams
from dfbench.datasets.base import Selection
from dfbench.datasets.celebdf import CelebDF
from dfbench.datasets.dfdcp import DFDCPreview
from dfbench.datasets.synth import cross_dataset as cd
from dfbench.datasets.synth.faces import random_identity
from dfbench.datasets.wilddeepfake import WildDeepfake, list_sequences

torch.set_num_threads(1)  # 2 shared cores: MTCNN's tiny ops only contend with more threads

SCALE = "tiny"
SPEC = cd.CROSS_SCALES[SCALE]


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return cd.generate_cross_dataset_sets(tmp_path_factory.mktemp("cross") / "data", scale=SCALE, seed=0, progress=False)


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in cd.iter_files(folder)}


def only_official_count_problems(problems: list[str]) -> bool:
    return all("official" in p for p in problems)


def test_folders_are_the_adapters_embedded_subdirs(sets: dict[str, Path]) -> None:
    assert {name: path.name for name, path in sets.items()} == {
        CelebDF.name: CelebDF.embedded_subdir,
        DFDCPreview.name: DFDCPreview.embedded_subdir,
        WildDeepfake.name: WildDeepfake.embedded_subdir,
    }
    for cls in (CelebDF, DFDCPreview, WildDeepfake):
        assert cls.looks_like(sets[cls.name])
    assert cd.cross_dataset_complete(next(iter(sets.values())).parent, SCALE, 0)


def test_celebdf_like_index_splits_and_labels(sets: dict[str, Path]) -> None:
    index = CelebDF(sets["celebdf"]).build_index()
    n_ids = SPEC.cdf_identities
    per_method = index.groupby("method").size().to_dict()
    assert per_method == {"Celeb-real": 2 * n_ids, "YouTube-real": SPEC.cdf_youtube, "Celeb-synthesis": 2 * n_ids}
    test = index[index["split"] == "test"]
    assert test.groupby("label").size().to_dict() == {0: SPEC.cdf_test, 1: SPEC.cdf_test}
    assert (test.loc[test["method"] == "YouTube-real"].shape[0]) == SPEC.cdf_test // 4
    # the carved validation split: identities id0, id10, … and YouTube clips 00000, 00010, …
    val = index[index["split"] == "val"]
    val_ids = len(range(0, n_ids, 10))
    assert val.groupby("label").size().to_dict() == {0: 2 * val_ids + len(range(0, SPEC.cdf_youtube, 10)), 1: 2 * val_ids}
    assert (index[index["split"] == "train"]["label"].nunique()) == 2
    # every fake's target real video exists (preprocessing reuses its boxes; partial needs it)
    fakes = index[index["label"] == 1]
    reals = set(index.loc[index["method"] == "Celeb-real", "video_id"].str.rsplit("/", n=1).str[-1])
    assert set(fakes["target_id"]) <= reals
    assert (fakes["target_id"].str.split("_").str[0] != "id" + fakes["source_id"].str[2:]).all()  # no self-swaps
    report = CelebDF(sets["celebdf"]).check()
    assert only_official_count_problems(report.problems), report.problems


def test_dfdcp_like_index_methods_and_sets(sets: dict[str, Path]) -> None:
    adapter = DFDCPreview(sets["dfdcp"])
    index = adapter.build_index()
    counts = index.groupby(["split", "method"]).size().to_dict()
    half = SPEC.dfdcp_test // 2
    assert counts == {
        ("test", "original_videos"): SPEC.dfdcp_test,
        ("test", "method_A"): SPEC.dfdcp_test - half,
        ("test", "method_B"): half,
        ("train", "original_videos"): SPEC.dfdcp_train,
        ("train", "method_A"): SPEC.dfdcp_train - SPEC.dfdcp_train // 2,
        ("train", "method_B"): SPEC.dfdcp_train // 2,
    }
    assert (index["label"] == (index["method"] != "original_videos").astype(int)).all()
    report = adapter.check()
    assert report.problems == []
    # landscape frames of another resolution than Celeb-DF's square ones
    import av

    with av.open(index["path"].iloc[0]) as container:
        stream = container.streams.video[0]
        assert (stream.height, stream.width) == cd.dfdcp_frame_shape(SPEC)
        assert stream.width > stream.height


def test_wdf_like_shards_sequences_and_laundered_sizes(sets: dict[str, Path]) -> None:
    adapter = WildDeepfake(sets["wdf"])
    index = adapter.build_index()
    counts = index.groupby(["split", "label"]).size().to_dict()
    assert counts == {("test", 0): SPEC.wdf_test, ("test", 1): SPEC.wdf_test, ("train", 0): SPEC.wdf_train, ("train", 1): SPEC.wdf_train}
    report = adapter.check()
    assert only_official_count_problems(report.problems) and report.notes == [], (report.problems, report.notes)
    sides = set()
    for path in index["path"]:
        shard, key = path.rsplit("::", 1)
        n = list_sequences(Path(shard))[0][key]
        assert SPEC.wdf_frames[0] <= n <= SPEC.wdf_frames[1]
        frame = adapter.read_sequence(path, [0])[0]
        assert frame.ndim == 3 and frame.shape[0] == frame.shape[1]
        sides.add(frame.shape[0])
    assert len(sides) > len(index) // 2  # crops of many sizes, as in the wild
    # the shards are plain, safe gzip tars with fixed member times
    with tarfile.open(index["path"].iloc[0].rsplit("::", 1)[0], "r:gz") as tar:
        assert all(m.isreg() and m.mtime == 0 and m.name.startswith("./") for m in tar.getmembers())


def test_generation_is_deterministic_and_seeded(sets: dict[str, Path], tmp_path: Path) -> None:
    again = cd.generate_cross_dataset_sets(tmp_path / "again", scale=SCALE, seed=0, progress=False)
    for name, folder in sets.items():
        assert digests(again[name]) == digests(folder), name
    other = cd.generate_cross_dataset_sets(tmp_path / "other", scale=SCALE, seed=1, progress=False, datasets=["wdf"])
    assert digests(other["wdf"]) != digests(sets["wdf"])
    # identities come from streams the FF++-like generator never uses ([seed, part, k])
    from dfbench.datasets.synth.ffpp import _candidate

    ffpp = {random_identity(np.random.default_rng([0, 1, k])) for k in range(40)}
    ours = {random_identity(cd._rng(0, name, 1, k)) for name in cd.DATASET_CODES for k in range(40)}
    assert not ffpp & ours and _candidate(0, 3, 4)[0] in ffpp


def test_existing_set_is_kept_and_foreign_folder_refused(sets: dict[str, Path], tmp_path: Path) -> None:
    marker = sets["dfdcp"] / cd.MARKER
    before = marker.stat().st_mtime_ns
    cd.generate_cross_dataset_sets(sets["dfdcp"].parent, scale=SCALE, seed=0, progress=False, datasets=["dfdcp"])
    assert marker.stat().st_mtime_ns == before  # a matching set is not rewritten
    (tmp_path / "celebdf").mkdir()
    (tmp_path / "celebdf" / "mine.txt").write_text("user data")
    with pytest.raises(DatasetError, match="is not a dfbench synthetic set"):
        cd.generate_cross_dataset_sets(tmp_path, scale=SCALE, progress=False, datasets=["celebdf"])
    assert (tmp_path / "celebdf" / "mine.txt").read_text() == "user data"


def test_interrupted_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(out: Path, *args: object) -> dict[str, int]:
        (out / "half_written.mp4").write_bytes(b"\x00" * 10)
        raise KeyboardInterrupt

    monkeypatch.setitem(cd.WRITERS, "wdf", broken)
    with pytest.raises(KeyboardInterrupt):
        cd.generate_cross_dataset_sets(tmp_path, scale=SCALE, progress=False, datasets=["wdf"])
    assert list(tmp_path.iterdir()) == []


def test_mtcnn_finds_faces_through_the_preprocessing_pipeline(sets: dict[str, Path], tmp_path: Path) -> None:
    clear_index_memo()
    crop = CropParams(frames=4, size=48)
    frames = load_frames(
        [Selection("celebdf", "test"), Selection("dfdcp", "test"), Selection("wdf", "test")],
        roots=sets,
        cache=CropCache(tmp_path / "cache"),
        crop=crop,
        progress=False,
    )
    assert frames.attrs["failed"] == []
    meta = frames.meta
    for name in ("celebdf", "dfdcp"):
        found = meta.loc[meta["dataset"] == name, "face_found"]
        assert len(found) > 0 and found.mean() >= 0.9, (name, found.mean())
    per_label = meta.drop_duplicates("video_id").groupby(["dataset", "label"]).size().to_dict()
    assert per_label == {
        ("celebdf", 0): SPEC.cdf_test,
        ("celebdf", 1): SPEC.cdf_test,
        ("dfdcp", 0): SPEC.dfdcp_test,
        ("dfdcp", 1): SPEC.dfdcp_test,
        ("wdf", 0): SPEC.wdf_test,
        ("wdf", 1): SPEC.wdf_test,
    }
    clear_index_memo()


def test_laundering_changes_pixels_but_keeps_size() -> None:
    rng = np.random.default_rng(0)
    img = np.full((64, 64, 3), 128, np.uint8)
    img[20:40, 20:40] = 30
    ops = {"down": 0.5, "blur": 1.0, "noise": 3.0, "jpeg": 40.0}
    out = cd.launder(img, 80, rng, ops)
    assert out.shape == (80, 80, 3) and out.dtype == np.uint8
    plain = cd.launder(img, 80, rng, {"down": 1.0, "blur": 0.0, "noise": 0.0, "jpeg": 0.0})
    assert np.abs(out.astype(int) - plain.astype(int)).mean() > 1.0
