"""Self-Blended Images (``synthesis: self_blended``): the pseudo-fakes, the protocol that trains
on FF++ reals + SBI (sbi_cross_dataset, pim Tables V and IX) and its coverage of those tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.protocol import load_protocol, parse_protocol
from dfbench.benchmark.results import CELL_ROWS_SUFFIX
from dfbench.benchmark.rows import Rows, concat_rows
from dfbench.benchmark.synthesis import SelfBlendParams, face_region, self_blend, self_blended

SIZE = 64
# MTCNN-like landmarks of a face filling the crop: eyes, nose tip, mouth corners (x, y)
LANDMARKS = np.array([[24.0, 26.0], [40.0, 26.0], [32.0, 34.0], [26.0, 43.0], [38.0, 43.0]])


def textured(seed: int, n: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE, 3) if n is None else (n, SIZE, SIZE, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def real_frames(n_videos: int = 3, per_video: int = 2, landmarks: bool = True) -> FrameSet:
    n = n_videos * per_video
    meta = pd.DataFrame({
        "video_id": [f"ffpp/youtube/c23/{v:03d}" for v in range(n_videos) for _ in range(per_video)],
        "frame": [f for _ in range(n_videos) for f in range(per_video)],
        "label": 0, "dataset": "ffpp", "method": "youtube", "quality": "c23", "face_found": True,
        "source_id": "", "target_id": "",
    })
    extras = {"landmarks": np.repeat(LANDMARKS[None].astype(np.float32), n, axis=0)} if landmarks else {}
    return FrameSet(textured(0, n), meta, extras)


# --------------------------------------------------------------------------- one pseudo-fake
@pytest.mark.parametrize("seed", range(6))
def test_a_pseudo_fake_differs_from_its_real_only_inside_the_blend_mask(seed: int) -> None:
    image = textured(seed)
    fake, mask = self_blend(image, LANDMARKS, np.random.default_rng(seed))
    changed = (fake != image).any(axis=2)
    assert changed.any()  # it is a fake
    assert not changed[mask == 0].any()  # bit-identical wherever M = 0
    assert mask.dtype == np.float32 and mask.min() >= 0.0 and mask.max() <= 1.0
    # the ratio r scales the whole mask: its peak is one of the blend ratios
    assert min(abs(mask.max() - r) for r in SelfBlendParams().blend_ratios) < 1e-5


@pytest.mark.parametrize("seed", range(6))
def test_the_mask_stays_within_the_face_region(seed: int) -> None:
    params = SelfBlendParams()
    _, mask = self_blend(textured(seed), LANDMARKS, np.random.default_rng(seed))
    region = face_region(LANDMARKS, SIZE, params).astype(bool)
    # the deformation moves a pixel by at most magnitude x side along each axis, the separable blur
    # spreads it by its kernel's radius (scipy truncates at 4 sigma) along each axis: the mask
    # lies within the region grown by both in the max-norm (a square structuring element)
    reach = int(np.ceil(params.distort_magnitude * SIZE + 4 * params.blur_sigma[1] * SIZE)) + 2
    grown = ndimage.binary_dilation(region, structure=np.ones((3, 3), bool), iterations=reach)
    assert not (mask > 0)[~grown].any()
    assert mask[region].mean() > 0.1  # and it covers the face, not a sliver of it
    # the crop's corners (background) are never touched
    assert mask[:4, :4].max() == 0 and mask[-4:, -4:].max() == 0


def test_the_face_region_follows_the_landmarks_else_the_crop_geometry() -> None:
    params = SelfBlendParams()
    shifted = face_region(LANDMARKS - [12.0, 0.0], SIZE, params)
    centred = face_region(LANDMARKS, SIZE, params)
    xs = np.nonzero(shifted)[1].mean(), np.nonzero(centred)[1].mean()
    assert xs[0] == pytest.approx(xs[1] - 12.0, abs=1.0)
    # no landmarks (no face found): the ellipse of the face box, 1/1.3 of the crop wide
    ellipse = face_region(np.full((5, 2), np.nan), SIZE, params)
    assert ellipse[SIZE // 2].sum() == pytest.approx(SIZE / 1.3, abs=2)
    assert ellipse[0].sum() == 0


def test_the_same_draw_gives_the_same_pseudo_fake() -> None:
    a = self_blend(textured(1), LANDMARKS, np.random.default_rng([7, 0, 3]))
    b = self_blend(textured(1), LANDMARKS, np.random.default_rng([7, 0, 3]))
    c = self_blend(textured(1), LANDMARKS, np.random.default_rng([8, 0, 3]))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


# --------------------------------------------------------------------------- the synthesised set
def test_the_set_holds_each_real_then_its_pseudo_fake_with_labels() -> None:
    reals = real_frames()
    frames = self_blended(reals, seed=0)
    n = len(reals)
    assert len(frames) == 2 * n
    assert frames.labels.tolist() == [0] * n + [1] * n
    assert frames.meta["video_id"].iloc[n:].tolist() == [v + "/self_blended" for v in reals.meta["video_id"]]
    assert set(frames.meta["method"].iloc[n:]) == {"self_blended"}
    assert frames.meta["target_id"].iloc[n:].tolist() == reals.meta["video_id"].tolist()
    images = np.asarray(frames.images)
    assert np.array_equal(images[:n], np.asarray(reals.images))  # the reals untouched
    for i in range(n):  # each fake is its own real, blended
        diff = (images[n + i] != images[i]).any(axis=2)
        assert diff.any() and diff.mean() < 0.9
    assert frames.extras == {}  # landmarks were needed for the masks, not asked for by the detector
    assert "landmarks" in self_blended(reals, seed=0, keep=("landmarks",)).extras


def test_the_set_is_deterministic_per_seed_and_redrawn_per_epoch() -> None:
    reals = real_frames()
    n = len(reals)
    one = np.asarray(self_blended(reals, seed=3).images)
    assert np.array_equal(one, np.asarray(self_blended(reals, seed=3).images))
    assert not np.array_equal(one[n:], np.asarray(self_blended(reals, seed=4).images)[n:])
    epoch = np.asarray(self_blended(reals, seed=3).redrawn(1).images)
    assert np.array_equal(epoch[:n], one[:n]) and not np.array_equal(epoch[n:], one[n:])
    assert np.array_equal(epoch, np.asarray(self_blended(reals, seed=3).redrawn(1).images))
    plain = FrameSet(np.asarray(reals.images), reals.meta)
    assert plain.redrawn(1) is plain  # a set without synthesis is not copied


def test_reads_agree_whichever_rows_a_batch_asks_for() -> None:
    frames = self_blended(real_frames(), seed=0)
    whole = np.asarray(frames.images)
    idx = np.array([7, 1, 11, 7, 0])
    assert np.array_equal(frames.batch(idx)["image"].permute(0, 2, 3, 1).numpy(), whole[idx])
    assert np.array_equal(frames.subset(idx).in_memory().images, whole[idx])
    assert np.array_equal(frames.images[5], whole[5])
    assert isinstance(frames.images, Rows) and frames.streamed
    with pytest.raises(ValueError, match="synthesised"):
        concat_rows([frames.images, frames.images])


def test_bad_inputs_are_one_line_errors() -> None:
    reals = real_frames()
    with pytest.raises(ConfigError, match="landmarks"):
        self_blended(real_frames(landmarks=False), seed=0)
    with pytest.raises(ConfigError, match="paired_real"):
        self_blended(reals, seed=0, keep=("paired_real",))
    meta = reals.meta.assign(label=[0, 0, 0, 0, 1, 1])
    with pytest.raises(ConfigError, match="fake frames"):
        self_blended(FrameSet(np.asarray(reals.images), meta, reals.extras), seed=0)


# --------------------------------------------------------------------------- the protocol
def test_sbi_cross_dataset_selects_ffpp_reals_only() -> None:
    spec = load_protocol("sbi_cross_dataset")
    (data,) = spec.trainings[0].data
    assert data.synthesis == "self_blended"
    sel = data.selection("train")
    assert (sel.dataset, sel.methods, sel.reals, sel.qualities) == ("ffpp", (), ("youtube",), ("c23",))
    assert data.describe() == "ffpp:self_blended@c23"
    assert [a.name for a in spec.averages] == ["Avg"]
    assert all(d.synthesis is None for t in spec.tests for d in t.data)


def _spec(data: list) -> dict:
    return {
        "name": "p", "version": 1,
        "trainings": [{"name": "t", "data": data}],
        "tests": [{"name": "FF++", "data": [{"dataset": "ffpp"}]}],
    }


def test_synthesis_entries_are_validated() -> None:
    with pytest.raises(ConfigError, match="leave out methods"):
        parse_protocol(_spec([{"dataset": "ffpp", "methods": ["Deepfakes"], "synthesis": "self_blended"}]), "p.yaml")
    with pytest.raises(ConfigError, match="all synthesised"):
        parse_protocol(_spec([{"dataset": "ffpp", "synthesis": "self_blended"}, {"dataset": "ffpp"}]), "p.yaml")
    from dfbench.benchmark.validate import check_spec

    with pytest.raises(ConfigError, match="synthesis: 'self_blend' is not one of .*did you mean 'self_blended'"):
        check_spec(parse_protocol(_spec([{"dataset": "ffpp", "synthesis": "self_blend"}]), "p.yaml"))
    check_spec(load_protocol("sbi_cross_dataset"))


def test_a_detector_needing_more_than_the_synthesis_supplies_is_refused_before_data_work(tmp_path: Path, capsys) -> None:
    from dfbench.benchmark.cli import main
    from dfbench.benchmark.validate import check_synthesis
    from dfbench.detectors.base import create_detector

    spec = load_protocol("sbi_cross_dataset")
    check_synthesis(spec, create_detector("pim"))  # images and labels only: fine
    with pytest.raises(ConfigError, match=r"synthesis 'self_blended'.*\['paired_real'\].*'big_arts'"):
        check_synthesis(spec, create_detector("big_arts"))
    # the CLI refuses it before looking at any data (the data root does not even exist)
    rc = main(["run", "--protocol", "sbi_cross_dataset", "--detector", "big_arts", "--data-root", str(tmp_path / "none")])
    assert rc == 2 and "cannot supply the frame data" in capsys.readouterr().err


# --------------------------------------------------------------------------- training
def test_training_draws_fresh_pseudo_fakes_each_epoch() -> None:
    from dfbench.detectors.base import create_detector

    frames = self_blended(real_frames(), seed=0)
    detector = create_detector("erm", batch_size=12)
    first = next(iter(detector.train_loader(frames, 0, 0)))
    second = next(iter(detector.train_loader(frames, 0, 1)))
    n = len(frames) // 2

    def by_index(batch):
        return {int(i): img for i, img in zip(batch["index"], batch["image"])}

    a, b = by_index(first), by_index(second)
    assert sorted(a) == sorted(b) == list(range(2 * n))
    assert all(np.array_equal(a[i], b[i]) for i in range(n))  # reals: the same every epoch
    assert not all(np.array_equal(a[i], b[i]) for i in range(n, 2 * n))  # fakes: drawn anew
    assert [int(y) for y in first["label"]] == [int(i >= n) for i in first["index"]]


def test_tiny_run_trains_on_ffpp_reals_and_their_pseudo_fakes(tmp_path: Path, monkeypatch) -> None:
    """The whole pipeline on a tiny FF++-layout set: reals + SBI → FF++ test, erm, one epoch."""
    import yaml

    from dfbench.benchmark.cli import main
    from dfbench.datasets.synth import generate_ffpp_like

    root = generate_ffpp_like(tmp_path / "FaceForensics++", scale="tiny", seed=0, progress=False)
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "home" / "runs"))
    spec = yaml.safe_load(_protocol_file().read_text())
    spec.update(name="sbi_tiny", tests=[spec["tests"][0]], averages=None, paper_cells=None, paper_tables=[])
    path = tmp_path / "sbi_tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    rc = main(["run", "--protocol", str(path), "--detector", "erm", "--data-root", str(root),
               "--set", "epochs=1", "--no-progress"])
    assert rc == 0
    runs = list((tmp_path / "home" / "runs").rglob("fit.json"))
    assert len(runs) == 1
    fit = json.loads(runs[0].read_text())
    assert fit["epochs_run"] == 1 and 0.0 <= fit["best_val_video_auc"] <= 1.0
    rows = pd.concat(pd.read_parquet(p) for p in (tmp_path / "home" / "runs").rglob("*" + CELL_ROWS_SUFFIX))
    video_auc = rows[(rows["metric"] == "auc") & (rows["level"] == "video")]
    assert len(video_auc) == 1 and video_auc["train_methods"].iloc[0] == "self_blended"
    assert video_auc["train_data"].iloc[0] == "ffpp:self_blended@c23"


def _protocol_file() -> Path:
    from dfbench.benchmark.protocol import protocol_files

    return protocol_files()["sbi_cross_dataset"]


# --------------------------------------------------------------------------- coverage
def test_coverage_of_pim_tables_v_and_ix_matches_hand_counts() -> None:
    from dfbench.benchmark.papers import coverage_rows, summarize_coverage

    tables = {(t.paper, t.table): t for t in summarize_coverage(coverage_rows())}
    # Table IX: 14 (alpha+beta, alpha:beta) rows (5 at a+b = 1.0, 3 at 0.8, 0.5 and 0.2) x
    # (CDF, DFDCP, DFDC, WDF, Avg) = 70, every row a registered DualFlat variant on FF++-real+SBI
    ix = tables[("pim", "IX")]
    assert (ix.covered, ix.printed) == (70, 70)
    assert any(b.startswith("sbi_cross_dataset (paper): ") and "sam" in b and "dualflat_a04_b16" in b for b in ix.by)
    # Table V: 16 rows print 64 numbers; dfbench has three rows x 5 columns: "Ours" on FF++
    # (pim, cross_dataset), "Ours" on FF++-Real & SBI (pim) and "SBI*" (sam: SBI's official code
    # trains with SAM; its numbers are Table IX's alpha=0, beta=1 row), 15 in all
    v = tables[("pim", "V")]
    assert (v.covered, v.printed) == (15, 64)
    assert not any(reason.startswith("no dataset adapter: FF++-real+SBI") for reason, _ in v.uncovered)


def test_the_leaderboard_shows_table_ix_and_v_beside_the_sbi_cells() -> None:
    from dfbench.benchmark.leaderboard import (
        _paper_entries,
        detector_paper_methods,
        load_reference,
        protocol_paper_cells,
    )

    def shown(detector: str, test: str) -> dict[tuple[str, str], float]:
        entries = _paper_entries(
            load_reference(), protocol_paper_cells("sbi_cross_dataset"), detector_paper_methods(detector),
            [("FF++-real+SBI", test, "", None)], ("auc",), "video",
        )
        return {(e.table, e.method): e.values[(("FF++-real+SBI", test, "", None), "auc")] for e in entries}

    # SBI* (Table V) = SAM on SBI data = Table IX's alpha=0, beta=1 row: CDF 93.89 in both
    assert shown("sam", "CDF") == {
        ("V", "SBI*"): pytest.approx(0.9389), ("IX", "SBI-DualFlat (a+b=1.0, a:b=0.0:1.0)"): pytest.approx(0.9389),
    }
    # pim on SBI data: Table V "Ours" 95.14 on CDF, Table IX's 1.0:0.0 row Avg-AUC 82.49
    assert shown("pim", "CDF")[("V", "PIM")] == pytest.approx(0.9514)
    assert shown("pim", "Avg") == {("IX", "SBI-DualFlat (a+b=1.0, a:b=1.0:0.0)"): pytest.approx(0.8249)}
    # the grid: alpha = 0.64, beta = 0.16 is the a+b = 0.8, 0.8:0.2 row (DFDC 73.74), FF++ has no IX column
    assert shown("dualflat_a64_b16", "DFDC") == {("IX", "SBI-DualFlat (a+b=0.8, a:b=0.8:0.2)"): pytest.approx(0.7374)}
    assert shown("dualflat_a64_b16", "FF++") == {}
    # FF++-trained numbers (cross_dataset) never appear beside a cell trained on SBI data
    assert ("VIII", "DualFlat (a+b=1.0, a:b=0.0:1.0)") not in shown("sam", "CDF")
