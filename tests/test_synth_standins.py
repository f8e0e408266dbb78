"""The on-demand UADFV- and DF-TIMIT-like stand-ins: their official layouts read back by the
real adapters, faces MTCNN finds through the preprocessing, determinism, generation only for
the datasets a run names, and the big_arts coverage they add (Table 5 by hand).

Uses the ``tiny`` scale (a few seconds each)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dfbench.benchmark import data as data_module
from dfbench.benchmark.data import clear_index_memo, load_frames
from dfbench.benchmark.errors import DatasetError
from dfbench.benchmark.preprocess.cache import CropCache, CropParams
from dfbench.datasets.base import Selection
from dfbench.datasets.dftimit import DFTIMIT
from dfbench.datasets.synth import dftimit as synth_dftimit
from dfbench.datasets.synth import standins
from dfbench.datasets.synth import uadfv as synth_uadfv
from dfbench.datasets.synth.cross_dataset import iter_files
from dfbench.datasets.synth.ffpp import MARKER
from dfbench.datasets.uadfv import UADFV

SCALE = "tiny"


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("standins")
    return {
        "uadfv": standins.generate_standin(synth_uadfv.STANDIN, root / "uadfv", scale=SCALE, progress=False),
        "dftimit": standins.generate_standin(synth_dftimit.STANDIN, root / "dftimit", scale=SCALE, progress=False),
    }


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in iter_files(folder)}


def test_adapters_name_their_stand_ins() -> None:
    for cls, module in ((UADFV, synth_uadfv), (DFTIMIT, synth_dftimit)):
        assert standins.load_standin(cls.embedded_generator) is module.STANDIN
        assert cls.embedded_subdir == cls.name


def test_uadfv_like_layout_read_back(sets: dict[str, Path]) -> None:
    n, _ = synth_uadfv.UADFV_SCALES[SCALE]
    root = sets["uadfv"]
    assert UADFV.looks_like(root)
    assert sorted(p.name for p in (root / "real").iterdir()) == [f"{k:04d}.mp4" for k in range(n)]
    assert sorted(p.name for p in (root / "fake").iterdir()) == [f"{k:04d}_fake.mp4" for k in range(n)]
    adapter = UADFV(root)
    index = adapter.build_index()
    assert index.groupby(["method", "label"]).size().to_dict() == {("fake", 1): n, ("real", 0): n}
    assert set(index["split"]) == {"test"} and not adapter.rejected
    assert set(index.loc[index["label"] == 1, "target_id"]) == set(index.loc[index["label"] == 0, "target_id"])
    assert all("official release has 49" in p for p in adapter.check().problems)
    marker = json.loads((root / MARKER).read_text())
    assert (marker["version"], marker["scale"], marker["counts"]) == (synth_uadfv.UADFV_VERSION, SCALE, {"real": n, "fake": n})


def test_dftimit_like_layout_read_back(sets: dict[str, Path]) -> None:
    subjects, sentences, frames = synth_dftimit.DFTIMIT_SCALES[SCALE]
    root = sets["dftimit"]
    assert DFTIMIT.looks_like(root)
    names = [synth_dftimit.subject_name(i) for i in range(subjects)]
    for i, name in enumerate(names):
        video = root / "VidTIMIT" / name / "video"
        assert sorted(p.name for p in video.iterdir()) == sorted(["head", *synth_dftimit.SENTENCES[:sentences]])
        frame_names = sorted(p.name for p in (video / "sa1").iterdir())
        assert frame_names == [f"{t + 1:03d}" for t in range(frames)]  # no extension, JPEG content
        assert (video / "sa1" / "001").read_bytes()[:2] == b"\xff\xd8"
        for folder in ("lower_quality", "higher_quality"):
            partner = names[i ^ 1]
            assert (root / "DeepfakeTIMIT" / folder / name / f"sa1-video-{partner}.avi").is_file()
    adapter = DFTIMIT(root)
    index = adapter.build_index()
    n = subjects * sentences
    assert index.groupby(["quality", "label"]).size().to_dict() == {("HQ", 0): n, ("HQ", 1): n, ("LQ", 0): n, ("LQ", 1): n}
    assert not index["video_id"].str.contains("/head").any() and not adapter.rejected
    reals = set(index.loc[index["label"] == 0, "target_id"])
    assert set(index.loc[index["label"] == 1, "target_id"]) == reals
    assert all("official set has 320" in p for p in adapter.check().problems)


def test_faces_are_found_in_frame_folders_and_avi_fakes(sets: dict[str, Path], tmp_path: Path) -> None:
    clear_index_memo()
    cache = CropCache(tmp_path / "cache")
    for sel in (
        Selection("uadfv", "test"),
        Selection("dftimit", "test", qualities=("LQ",)),
        Selection("dftimit", "test", qualities=("HQ",)),
    ):
        frames = load_frames([sel], roots=sets, cache=cache, crop=CropParams(frames=4, size=64), progress=False)
        assert frames.attrs["failed"] == []
        assert float(frames.meta["face_found"].mean()) >= 0.9
        per_class = frames.meta.groupby("label")["video_id"].nunique().to_dict()
        assert per_class[0] == per_class[1] >= 2
    # the LQ and HQ sets share their reals: the second pass reads them from the cache
    assert cache.stats.hits > 0


def test_generation_is_deterministic_and_kept(sets: dict[str, Path], tmp_path: Path) -> None:
    again = standins.generate_standin(synth_uadfv.STANDIN, tmp_path / "uadfv", scale=SCALE, progress=False)
    assert digests(again) == digests(sets["uadfv"])
    before = (again / MARKER).stat().st_mtime_ns
    standins.generate_standin(synth_uadfv.STANDIN, again, scale=SCALE, progress=False)  # kept, not rewritten
    assert (again / MARKER).stat().st_mtime_ns == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("user data")
    with pytest.raises(DatasetError, match="is not a dfbench synthetic set"):
        standins.generate_standin(synth_uadfv.STANDIN, foreign, scale=SCALE, progress=False)
    assert (foreign / "mine.txt").read_text() == "user data"


def test_stand_ins_are_made_only_for_the_datasets_a_run_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DFBENCH_DATA", str(tmp_path / "data"))
    made: list[str] = []

    def fake_generate(standin, out, *, scale, seed=0, progress=True):  # records instead of rendering
        made.append(f"{standin.label}@{scale}")
        out.mkdir(parents=True)
        (out / MARKER).write_text(json.dumps({"generator": f"dfbench synthetic {standin.label} set", "version": standin.version, "scale": scale, "seed": seed}))
        return out

    monkeypatch.setattr(standins, "generate_standin", fake_generate)
    from dfbench.datasets import synth

    monkeypatch.setattr(synth, "ensure_embedded_data", lambda scale, progress=True: None)  # FF++-like etc. not needed here
    roots = data_module.default_roots(None, ["ffpp", "celebdf"], progress=False)
    assert made == [] and "uadfv" not in roots  # e.g. the README's cross_quality run: no new set
    roots = data_module.default_roots(None, ["celebdf", "uadfv"], progress=False)
    assert made == ["UADFV-like@mini"] and roots["uadfv"] == tmp_path / "data" / "mini" / "uadfv"
    data_module.default_roots(None, ["uadfv", "dftimit"], progress=False)
    assert made == ["UADFV-like@mini", "DF-TIMIT-like@mini"]  # the UADFV set was kept


def test_big_arts_table_5_coverage_by_hand() -> None:
    from dfbench.benchmark.leaderboard import load_reference
    from dfbench.benchmark.papers import coverage_rows

    ref = load_reference()
    rows = coverage_rows(ref[(ref["paper"] == "big_arts") & ref["table"].isin(["Table 4", "Table 5"])])
    t5 = rows[rows["table"] == "Table 5"]
    # by hand: 4 BiG-Arts augmentation rows × 8 columns = 32 numbers; the 7 columns, UADFV, DT-LQ
    # and DT-HQ included, have a cell, and the Avg column (4) is celebdf_generalization's Avg
    assert len(t5) == 32
    assert int(t5["covered"].sum()) == 32
    assert t5.loc[t5["test_data"] == "Avg", "covered_by"].str.startswith("celebdf_generalization (paper)").all()
    new = t5[t5["test_data"].isin(["UADFV", "DT-LQ", "DT-HQ"])]
    assert len(new) == 12 and new["covered_by"].str.startswith("celebdf_generalization (paper)").all()
    # Table 4 (trained on FF++ Deepfakes c23): its UADFV / DT columns come from ffpp_deepfakes
    t4 = rows[(rows["table"] == "Table 4") & rows["test_data"].isin(["UADFV", "DT-LQ", "DT-HQ"]) & rows["covered"]]
    assert len(t4) == 21 and t4["covered_by"].str.startswith("ffpp_deepfakes (paper)").all()
    # the paper value shown beside the cell: BiG-Arts (aug=all) on DT-HQ
    full = t5[(t5["method"] == "BiG-Arts (aug=all)") & (t5["test_data"] == "DT-HQ")]
    assert full["value"].tolist() == [pytest.approx(0.9377)]


def test_a_dataset_root_override_gets_no_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dfbench.benchmark.protocol import load_protocol
    from dfbench.benchmark.runner import DataResolver, RunRequest

    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    asked: list[list[str]] = []

    def roots(data_root, names, *, progress=True):
        asked.append(list(names))
        return {}

    monkeypatch.setattr(data_module, "default_roots", roots)
    spec = load_protocol("celebdf_generalization")
    request = RunRequest(protocol=spec.name, detector="erm", dataset_roots={"uadfv": tmp_path, "dftimit": tmp_path}, progress=False)
    resolver = DataResolver(request, spec, 64)
    assert asked == [["celebdf", "ffpp", "dfdcp", "wdf"]]
    assert resolver.roots == {"uadfv": tmp_path, "dftimit": tmp_path}
