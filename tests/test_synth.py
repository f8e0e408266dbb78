"""The embedded synthetic FF++-like generator: layout, splits, determinism, qualities,
masks, detectability and locality of the manipulations.

One ``tiny`` set is generated per module (seconds) and shared by the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.datasets.synth import MARKER, SCALES, ensure_embedded_data, generate_ffpp_like
from dfbench.datasets.synth.encode import QUALITIES, read_mask, read_video
from dfbench.datasets.synth.faces import face_coords, random_identity, random_motion
from dfbench.datasets.synth.ffpp import BOXES_FILE, _matches, make_pairs, read_marker
from dfbench.datasets.synth.manipulations import METHODS
from dfbench.datasets.synth.traces import (
    STATISTICS,
    fine_energy,
    mid_energy,
    paired_separability,
    seam_step,
    separability,
)

SCALE = SCALES["tiny"]


@pytest.fixture(scope="module")
def ffpp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ffpp"
    return generate_ffpp_like(out, scale="tiny", seed=0, progress=False, workers=1)


def _splits(root: Path) -> dict[str, list[list[str]]]:
    return {s: json.loads((root / "splits" / f"{s}.json").read_text()) for s in ("train", "val", "test")}


def _real(root: Path, name: str, q: str = "raw") -> Path:
    return root / "original_sequences" / "youtube" / q / "videos" / f"{name}.mp4"


def _fake(root: Path, method: str, stem: str, q: str = "raw") -> Path:
    return root / "manipulated_sequences" / method / q / "videos" / f"{stem}.mp4"


def _mask(root: Path, method: str, stem: str) -> Path:
    return root / "manipulated_sequences" / method / "masks" / "videos" / f"{stem}.mp4"


def test_layout_and_splits(ffpp: Path) -> None:
    splits = _splits(ffpp)
    assert [len(splits[s]) for s in ("train", "val", "test")] == list(SCALE.split_pairs)
    ids = {s: {i for pair in pairs for i in pair} for s, pairs in splits.items()}
    assert all(len(pair) == 2 and pair[0] != pair[1] for pairs in splits.values() for pair in pairs)
    # every identity is in exactly one pair and the splits are disjoint
    assert sum(len(v) for v in ids.values()) == SCALE.identities
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    for pairs in splits.values():
        for a, b in pairs:
            for q in QUALITIES:
                assert _real(ffpp, a, q).is_file() and _real(ffpp, b, q).is_file()
                for m in METHODS:
                    assert _fake(ffpp, m, f"{a}_{b}", q).is_file() and _fake(ffpp, m, f"{b}_{a}", q).is_file()
            for m in METHODS:
                assert _mask(ffpp, m, f"{a}_{b}").is_file() and _mask(ffpp, m, f"{b}_{a}").is_file()
    # nothing beyond the official set of videos (no stray or partial files)
    n_videos = len(list(ffpp.rglob("*.mp4")))
    assert n_videos == SCALE.identities * (3 + len(METHODS) * 4)
    marker = read_marker(ffpp)
    assert marker is not None and marker["scale"] == "tiny" and marker["seed"] == 0
    assert not [p for p in ffpp.parent.iterdir() if p.name.startswith(".ffpp.partial")]


def test_videos_have_the_scale_shape_and_masks_match(ffpp: Path) -> None:
    a, b = _splits(ffpp)["test"][0]
    real = read_video(_real(ffpp, a, "c40"))
    assert real.shape == (SCALE.frames, SCALE.size, SCALE.size, 3)
    mask = read_mask(_mask(ffpp, "Deepfakes", f"{a}_{b}"))
    assert mask.shape == (SCALE.frames, SCALE.size, SCALE.size)
    assert set(np.unique(mask)) <= {0, 255}  # lossless: binary stays binary


def test_same_seed_same_content_other_seed_differs(ffpp: Path, tmp_path: Path) -> None:
    again = generate_ffpp_like(tmp_path / "again", scale="tiny", seed=0, progress=False, workers=2)
    a, b = _splits(ffpp)["train"][0]
    assert _splits(again) == _splits(ffpp)
    for path in (
        f"original_sequences/youtube/raw/videos/{a}.mp4",
        f"manipulated_sequences/FaceSwap/c23/videos/{a}_{b}.mp4",
    ):
        np.testing.assert_array_equal(read_video(ffpp / path), read_video(again / path))
    other = make_pairs(1, [f"{i:03d}" for i in range(SCALE.identities)], SCALE.split_pairs)
    assert other != _splits(ffpp)


def _psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def test_compression_order_raw_c23_c40(ffpp: Path) -> None:
    a, b = _splits(ffpp)["val"][0]
    for path_of in (lambda q: _real(ffpp, a, q), lambda q: _fake(ffpp, "NeuralTextures", f"{a}_{b}", q)):
        raw, c23, c40 = (read_video(path_of(q)) for q in QUALITIES)
        p23, p40 = _psnr(raw, c23), _psnr(raw, c40)
        assert p23 > p40 + 3.0, (p23, p40)
        assert p23 < 60.0  # c23 is lossy; raw equals itself exactly


def test_masks_cover_the_face_and_nothing_far_outside(ffpp: Path) -> None:
    boxes = json.loads((ffpp / BOXES_FILE).read_text())["boxes"]
    for a, b in _splits(ffpp)["train"][:2]:
        box = np.array(boxes[a])  # the target's face box per frame
        for m in METHODS:
            mask = read_mask(_mask(ffpp, m, f"{a}_{b}")) > 0
            for t in (0, SCALE.frames - 1):
                x1, y1, x2, y2 = box[t]
                assert mask[t].sum() > 20, (m, t)  # a visible region
                ys, xs = np.nonzero(mask[t])
                # the manipulated region lies inside the face box (small margin for feathering)
                margin = 0.15 * (x2 - x1)
                assert xs.min() >= x1 - margin and xs.max() <= x2 + margin, m
                assert ys.min() >= y1 - margin and ys.max() <= y2 + margin, m
                # and its centre is inside the face
                assert x1 < xs.mean() < x2 and y1 < ys.mean() < y2


def test_manipulations_change_pixels_only_inside_their_mask(ffpp: Path) -> None:
    for a, b in _splits(ffpp)["test"]:
        real = read_video(_real(ffpp, a)).astype(np.int16)
        for m in METHODS:
            fake = read_video(_fake(ffpp, m, f"{a}_{b}")).astype(np.int16)
            mask = read_mask(_mask(ffpp, m, f"{a}_{b}")) > 0
            diff = np.abs(fake - real).max(-1)
            assert diff[~mask].max() == 0, m  # raw is lossless: outside the mask untouched
            assert diff[mask].mean() > 1.0, m  # inside, the manipulation did change pixels
            # and a swap is a different face from its target (Face2Face/NT keep the identity)
        # the swaps differ from their target far more than the subtle texture re-rendering
        nt = np.abs(read_video(_fake(ffpp, "NeuralTextures", f"{a}_{b}")).astype(np.int16) - real).mean()
        df = np.abs(read_video(_fake(ffpp, "Deepfakes", f"{a}_{b}")).astype(np.int16) - real).mean()
        assert df > 2 * nt


def _trace_separability(root: Path, method: str, q: str) -> dict[str, float]:
    """Paired separability of every fake of ``method`` from its target's real video at quality
    ``q`` by each fixed trace statistic (docs/synthetic.md, "Multi-scale traces")."""
    values: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in STATISTICS}
    for pairs in _splits(root).values():
        for a, b in pairs:
            for target, source in ((a, b), (b, a)):
                mask = read_mask(_mask(root, method, f"{target}_{source}"))
                videos = (
                    read_video(_real(root, target, q)),
                    read_video(_fake(root, method, f"{target}_{source}", q)),
                )
                for name, stat in STATISTICS.items():
                    for side, frames in zip(values[name], videos):
                        side.append(stat(frames, mask))
    return {name: paired_separability(*v) for name, v in values.items()}


def test_trace_statistics_hand_computed() -> None:
    frames = np.full((2, 64, 64, 3), 100, np.uint8)
    masks = np.zeros((2, 64, 64), np.uint8)
    masks[:, 16:48, 16:48] = 255
    # a flat frame: no energy at any scale either side of the seam (log ratio of the floors)
    assert fine_energy(frames, masks) == pytest.approx(0.0, abs=1e-6)
    assert mid_energy(frames, masks) == pytest.approx(0.0, abs=1e-6)
    # grain inside the mask only raises the inside/outside high-pass ratio, far more than
    # the band-pass one; a brighter square puts a step on its seam (gradient there, none beside)
    rng = np.random.default_rng(0)
    grainy = frames.astype(np.int16)
    grainy[:, 16:48, 16:48] += rng.integers(-8, 9, (2, 32, 32, 1))
    assert fine_energy(grainy.astype(np.uint8), masks) > 5.0
    assert mid_energy(grainy.astype(np.uint8), masks) < fine_energy(grainy.astype(np.uint8), masks)
    stepped = frames.copy()
    stepped[:, 20:44, 20:44] += 6  # the hard edge 4 px inside the mask's edge: on the seam line
    assert seam_step(stepped, masks) > 3.0
    assert seam_step(frames, masks) == pytest.approx(0.0, abs=1e-6)
    assert separability([0.0, 1.0], [2.0, 3.0]) == 1.0 and separability([2.0, 3.0], [0.0, 1.0]) == 1.0
    # paired: fake i against real i only; 2 of 4 fakes above their own real, one tie -> 2.5/4
    assert paired_separability([0.0, 5.0, 1.0, 2.0], [1.0, 6.0, 0.0, 2.0]) == pytest.approx(0.625)
    assert paired_separability([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]) == 1.0


def test_neuraltextures_fine_and_coarse_traces_separate_pairs(ffpp: Path) -> None:
    # multi-scale traces (generator v4): the fine grain (std 8) and the coarse trace (half-
    # resolution render, mid-band energy) each separate most NT fakes from their own target at
    # raw, and the coarse one still separates most of them at c40 (12 pairs of the tiny set;
    # docs/synthetic.md has mini's). The fine statistic is not asserted to fall at c40: with
    # the weaker grain it need not on 12 pairs (at std 6 it was 0.83 at raw and c40 alike);
    # what c40 does to the grain is measured by training (docs/synthetic.md).
    raw, c40 = (_trace_separability(ffpp, "NeuralTextures", q) for q in ("raw", "c40"))
    assert raw["fine"] >= 0.75, (raw, c40)
    assert raw["mid"] >= 0.75 and c40["mid"] >= 0.65, (raw, c40)


def test_mtcnn_detects_sampled_frames(ffpp: Path) -> None:
    from facenet_pytorch import MTCNN
    from PIL import Image

    images = []
    for q in ("raw", "c40"):
        for name in sorted(json.loads((ffpp / BOXES_FILE).read_text())["boxes"]):
            frames = read_video(_real(ffpp, name, q))
            images += [Image.fromarray(frames[t]) for t in (1, SCALE.frames // 2 + 1)]
        a, b = _splits(ffpp)["train"][0]
        for m in METHODS:
            images.append(Image.fromarray(read_video(_fake(ffpp, m, f"{a}_{b}", q))[2]))
    _, probs = MTCNN(keep_all=False, device="cpu").detect(images)
    found = [p is not None and p[0] is not None and float(p[0]) > 0.9 for p in probs]
    assert np.mean(found) >= 0.95, [i for i, f in enumerate(found) if not f]


def test_face_box_matches_the_rendered_face() -> None:
    rng = np.random.default_rng(3)
    identity, motion = random_identity(rng), random_motion(rng, 5)
    co = face_coords(identity, motion.pose(2), 128)
    inside = (co.u**2 + co.v**2) < 1
    ys, xs = np.nonzero(inside)
    from dfbench.datasets.synth.faces import face_box

    x1, y1, x2, y2 = face_box(identity, motion.pose(2), 128)
    assert abs(xs.min() - x1) < 2 and abs(xs.max() + 1 - x2) < 2
    assert abs(ys.min() - y1) < 2 and abs(ys.max() + 1 - y2) < 2


def test_existing_folders_are_respected(ffpp: Path, tmp_path: Path) -> None:
    # same scale and seed: returned as is, nothing rewritten
    before = (ffpp / MARKER).stat().st_mtime_ns
    assert generate_ffpp_like(ffpp, scale="tiny", seed=0, progress=False) == ffpp
    assert (ffpp / MARKER).stat().st_mtime_ns == before
    # a folder that is not a synthetic set is never overwritten
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not a dfbench synthetic set"):
        generate_ffpp_like(user, scale="tiny", progress=False)
    assert (user / "keep.txt").read_text() == "mine"
    # another seed into an existing synthetic set needs overwrite=True
    with pytest.raises(DatasetError, match="overwrite=True"):
        generate_ffpp_like(ffpp, scale="tiny", seed=5, progress=False)
    with pytest.raises(ConfigError, match="Unknown synthetic scale"):
        generate_ffpp_like(tmp_path / "x", scale="huge", progress=False)


def test_ensure_embedded_data_uses_settings_and_reuses(
    ffpp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.setenv("DFBENCH_DATA", str(tmp_path / "data"))
    # seed the embedded location with the module's set: ensure must accept it, not regenerate
    shutil.copytree(ffpp, tmp_path / "data" / "tiny" / "ffpp")
    calls: list[str] = []
    monkeypatch.setattr(
        "dfbench.datasets.synth.embedded.generate_ffpp_like", lambda *a, **k: calls.append("gen")
    )
    root = ensure_embedded_data("tiny")
    assert root == tmp_path / "data" / "tiny" and (root / "ffpp" / MARKER).is_file()
    assert calls == []
    # a stale marker (older generator) triggers regeneration under the lock
    marker = json.loads((root / "ffpp" / MARKER).read_text())
    (root / "ffpp" / MARKER).write_text(json.dumps({**marker, "version": -1}))
    assert not _matches(read_marker(root / "ffpp"), "tiny", 0)
    ensure_embedded_data("tiny", progress=False)
    assert calls == ["gen"]
