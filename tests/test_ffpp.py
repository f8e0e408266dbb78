"""FaceForensics++ adapter: index from the official layout, splits, check(), references."""

from __future__ import annotations

import json
import shutil

import pytest

from dfbench.benchmark.errors import DatasetError
from dfbench.benchmark.preprocess.pipeline import reference_video_ids
from dfbench.datasets.base import INDEX_COLUMNS, get_dataset
from dfbench.datasets.ffpp import FaceForensicsPP


@pytest.fixture(scope="module")
def index(ffpp_fixture):
    return FaceForensicsPP(ffpp_fixture.root).build_index()


def by_id(index):
    return index.set_index("video_id")


def test_index_schema_labels_and_unique_ids(index):
    assert list(index.columns) == list(INDEX_COLUMNS)
    assert index["video_id"].is_unique
    # 6 youtube + 2 actors reals, 6 DF + 6 NT + 1 DFD fakes, each at 3 qualities
    assert len(index) == (6 + 2 + 6 + 6 + 1) * 3
    assert set(index.loc[index["label"] == 0, "method"]) == {"youtube", "actors"}
    assert set(index.loc[index["label"] == 1, "method"]) == {"Deepfakes", "NeuralTextures", "DeepFakeDetection"}
    assert get_dataset("ffpp", "/x").__class__ is FaceForensicsPP


def test_pair_split_covers_both_orderings_and_reals(index):
    rows = by_id(index)
    for name in ("000_001", "001_000"):
        assert rows.at[f"ffpp/Deepfakes/c23/{name}", "split"] == "train"
    assert rows.at["ffpp/youtube/raw/000", "split"] == "train"
    assert rows.at["ffpp/youtube/c40/001", "split"] == "train"
    assert rows.at["ffpp/NeuralTextures/c23/003_002", "split"] == "val"
    assert rows.at["ffpp/Deepfakes/raw/005_004", "split"] == "test"
    r = rows.loc["ffpp/Deepfakes/c40/004_005"]
    assert (r["target_id"], r["source_id"], r["label"]) == ("004", "005", 1)
    assert r["path"].endswith("manipulated_sequences/Deepfakes/c40/videos/004_005.mp4")
    real = rows.loc["ffpp/youtube/c23/004"]
    assert (real["target_id"], real["source_id"], real["label"]) == ("004", "004", 0)


def test_dfd_naming_and_test_only(index):
    rows = by_id(index)
    fake = rows.loc["ffpp/DeepFakeDetection/c23/01_02__talking__AB12CD34"]
    assert (fake["target_id"], fake["source_id"], fake["split"]) == ("01__talking", "02__talking", "test")
    actor = rows.loc["ffpp/actors/raw/02__talking"]
    assert (actor["label"], actor["split"], actor["target_id"]) == (0, "test", "02__talking")


def test_masks_only_where_present(index):
    rows = by_id(index)
    assert rows.at["ffpp/Deepfakes/c23/000_001", "mask_path"].endswith("Deepfakes/masks/videos/000_001.mp4")
    assert rows.at["ffpp/NeuralTextures/c23/000_001", "mask_path"] == ""
    assert rows.at["ffpp/youtube/c23/000", "mask_path"] == ""


def test_check_clean_fixture(ffpp_fixture):
    report = FaceForensicsPP(ffpp_fixture.root).check()
    assert report.ok, report.problems
    counts = report.counts.set_index(["method", "quality", "split"])["videos"]
    assert counts[("youtube", "c23", "train")] == 2
    assert counts[("Deepfakes", "raw", "test")] == 2
    assert counts[("DeepFakeDetection", "c40", "test")] == 1
    assert any("not compared" in n for n in report.notes)


def test_missing_split_file(ffpp_copy):
    (ffpp_copy / "splits" / "val.json").unlink()
    with pytest.raises(DatasetError, match=r"splits/val\.json is missing"):
        FaceForensicsPP(ffpp_copy).build_index()
    report = FaceForensicsPP(ffpp_copy).check()
    assert not report.ok
    assert any("val.json" in p for p in report.problems)
    # the other split files still count their videos (issue #18 item 5)
    counts = report.counts.set_index(["method", "quality", "split"])["videos"]
    assert counts[("youtube", "c23", "train")] == 2 and counts[("youtube", "c23", "test")] == 2
    assert counts[("Deepfakes", "raw", "test")] == 2 and counts[("youtube", "c23", "none")] == 2


def test_split_files_at_root_are_found(ffpp_copy):
    for f in (ffpp_copy / "splits").iterdir():
        shutil.move(f, ffpp_copy / f.name)
    (ffpp_copy / "splits").rmdir()
    assert len(FaceForensicsPP(ffpp_copy).build_index()) == 63


def test_unknown_method_folder_is_reported_and_ignored(ffpp_copy):
    odd = ffpp_copy / "manipulated_sequences" / "MyGAN" / "c23" / "videos"
    odd.mkdir(parents=True)
    shutil.copy(ffpp_copy / "original_sequences" / "youtube" / "c23" / "videos" / "000.mp4", odd / "000_001.mp4")
    adapter = FaceForensicsPP(ffpp_copy)
    with pytest.warns(UserWarning, match="MyGAN"):
        index = adapter.build_index()
    assert "MyGAN" not in set(index["method"])
    assert any("MyGAN" in w for w in adapter.warnings)
    report = adapter.check()
    assert any("MyGAN" in p and "not a known FF++ method" in p for p in report.problems)


def test_video_in_no_split_and_missing_pair_video(ffpp_copy):
    videos = ffpp_copy / "original_sequences" / "youtube" / "c23" / "videos"
    shutil.copy(videos / "000.mp4", videos / "999.mp4")
    (ffpp_copy / "manipulated_sequences" / "Deepfakes" / "c40" / "videos" / "002_003.mp4").unlink()
    adapter = FaceForensicsPP(ffpp_copy)
    with pytest.warns(UserWarning, match="no split"):
        index = adapter.build_index()
    assert "ffpp/youtube/c23/999" not in set(index["video_id"])
    problems = adapter.check().problems
    assert any("no split file" in p and "999" in p for p in problems)
    assert any(p.startswith("Deepfakes/c40: 1 videos") and "002_003" in p for p in problems)


def test_missing_quality_is_reported(ffpp_copy):
    shutil.rmtree(ffpp_copy / "manipulated_sequences" / "NeuralTextures" / "raw")
    problems = FaceForensicsPP(ffpp_copy).check().problems
    assert any(p.startswith("NeuralTextures lacks qualities ['raw']") for p in problems)


def test_official_split_sizes_trigger_count_comparison(ffpp_copy):
    for split, n in {"train": 360, "val": 70, "test": 70}.items():
        base = {"train": 0, "val": 720, "test": 860}[split]
        pairs = [[f"{base + 2 * i:03d}", f"{base + 2 * i + 1:03d}"] for i in range(n)]
        (ffpp_copy / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    report = FaceForensicsPP(ffpp_copy).check()
    assert any("Official split files found" in n for n in report.notes)
    assert any("youtube/c23 has" in p and "official release has 1000" in p for p in report.problems)


def test_split_files_that_overlap_are_refused(ffpp_copy):
    (ffpp_copy / "splits" / "val.json").write_text(json.dumps([["000", "009"]]))
    with pytest.raises(DatasetError, match="both the train and the val"):
        FaceForensicsPP(ffpp_copy).build_index()


def test_malformed_split_file(ffpp_copy):
    (ffpp_copy / "splits" / "test.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"test\.json is not a JSON list"):
        FaceForensicsPP(ffpp_copy).build_index()


def test_reference_video_ids(index):
    refs = dict(zip(index["video_id"], reference_video_ids(index, real_methods=("youtube", "actors"),
                                                            qualities=("raw", "c23", "c40"))))
    assert refs["ffpp/youtube/c40/004"] == "ffpp/youtube/raw/004"
    assert refs["ffpp/Deepfakes/c23/004_005"] == "ffpp/youtube/raw/004"
    assert refs["ffpp/NeuralTextures/c40/005_004"] == "ffpp/youtube/raw/005"
    assert refs["ffpp/DeepFakeDetection/c40/01_02__talking__AB12CD34"] == "ffpp/actors/raw/01__talking"
    # best *available* quality: without raw reals, c23 is the reference
    no_raw = index[~((index["label"] == 0) & (index["quality"] == "raw"))]
    refs2 = dict(zip(no_raw["video_id"], reference_video_ids(no_raw, real_methods=("youtube", "actors"),
                                                              qualities=("raw", "c23", "c40"))))
    assert refs2["ffpp/Deepfakes/c40/004_005"] == "ffpp/youtube/c23/004"
    on_fake = reference_video_ids(index, real_methods=("youtube", "actors"), qualities=("raw", "c23", "c40"),
                                  detect_on_fake=True)
    assert dict(zip(index["video_id"], on_fake))["ffpp/Deepfakes/c40/004_005"] == "ffpp/Deepfakes/raw/004_005"


def test_missing_root():
    with pytest.raises(DatasetError, match="does not exist"):
        FaceForensicsPP("/nonexistent/ffpp").build_index()
    assert not FaceForensicsPP("/nonexistent/ffpp").check().ok


def test_symlink_out_of_the_root_is_refused_and_never_opened(ffpp_copy, tmp_path, monkeypatch):
    """Issue #18 item 1: a video that is a link to a readable file outside the root is refused
    by path inside the root, counted as rejected, and nothing opens its target; a link whose
    target stays inside the root is followed."""
    import builtins
    import io

    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"secret bytes outside the dataset root")
    victim = ffpp_copy / "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4"
    victim.unlink()
    victim.symlink_to(outside)
    inner = ffpp_copy / "manipulated_sequences/Deepfakes/c40/videos/000_001.mp4"
    inner.unlink()
    inner.symlink_to(ffpp_copy / "manipulated_sequences/Deepfakes/raw/videos/000_001.mp4")

    opened: list[str] = []
    real_open, real_io_open = builtins.open, io.open

    def spy(opener):
        def wrapped(file, *args, **kwargs):
            opened.append(str(file))
            return opener(file, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    adapter = FaceForensicsPP(ffpp_copy)
    index = adapter.build_index()
    report = FaceForensicsPP(ffpp_copy).check()
    monkeypatch.undo()

    assert not any(str(outside) in p for p in opened), opened
    assert str(outside) not in set(index["path"])
    assert "ffpp/Deepfakes/c23/000_001" not in set(index["video_id"])
    rel = "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4"
    assert [(r.dataset, r.entry) for r in adapter.rejected] == [("ffpp", rel)]
    assert "resolves outside the dataset root" in adapter.rejected[0].reason
    assert not report.ok and any(rel in p for p in report.problems)
    # the link that stays inside the root is followed (to the raw file)
    row = index.set_index("video_id").loc["ffpp/Deepfakes/c40/000_001"]
    assert row["path"] == str((ffpp_copy / "manipulated_sequences/Deepfakes/raw/videos/000_001.mp4").resolve())
