"""Fill the crop cache with exactly the entries a ``dfbench run`` of a protocol will read.

``dfbench run --protocol P --detector D [--preset X]`` reads crops through
``runner.DataResolver.load``: for every frame set a procedure asks for, the rows of the
selection (plus the other qualities for the "qualities" extra and the paired reals for
"paired_real") cropped with ``CropParams(frames=per_video, size=<detector input size>)``,
every other crop parameter at its default. ``per_video`` is the protocol's
``frames_train`` for training sets and ``frames_test`` for validation and test sets. The
``train_test`` procedure (every protocol but ``compression_remedy``) asks for:

- per training: its data, split "train", ``frames_train``, the detector's extras; and
  split "val", ``frames_test``, the detector's extras less the training-only ones;
- per test scored after some training (and whose datasets are available): split "test",
  ``frames_test``, the extras of the test's transform.

``protocol_crop_jobs`` lists those loads and ``warm_protocol`` fills their entries (one
``ensure_crops`` call per dataset and crop setting, so workers see every video at once).
The same detector preset gives the same input size the run uses; ``--set`` overrides
that change it (e.g. ``input_size=``) must be passed to both commands. The
``compression_remedy`` procedure's extra loads (the data its bleach trains on) are not
covered: its trainings and tests are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dfbench.benchmark.preprocess.cache import CropCache, CropParams
from dfbench.benchmark.preprocess.pipeline import PreprocessReport, ensure_crops


@dataclass(frozen=True)
class CropJob:
    """One frame set a run loads: ``frame_loader(data, split, frames, requires)``."""

    data: tuple[Any, ...]  # DataSpec
    split: str
    frames: int
    requires: tuple[str, ...]


def protocol_crop_jobs(
    spec: Any, detector_requires: Iterable[str], available: Callable[[str], bool] = lambda d: True,
    skip_tests: Iterable[str] = (),
) -> list[CropJob]:
    """The loads of ``train_test`` for ``spec`` (a ProtocolSpec), in the order it makes them."""
    from dfbench.benchmark.procedures import TEST_TRANSFORMS, validation_requires

    requires = tuple(sorted(set(detector_requires)))
    skip = set(skip_tests)
    jobs: list[CropJob] = []
    for training in spec.trainings:
        jobs.append(CropJob(tuple(training.data), "train", spec.frames_train, requires))
        jobs.append(CropJob(tuple(training.data), "val", spec.frames_test, tuple(validation_requires(requires))))
        for test in spec.tests_for(training.name):
            if test.name in skip or not all(available(d.dataset) for d in test.data):
                continue
            transform = TEST_TRANSFORMS.get(test.transform.name) if test.transform else None
            extras = tuple(sorted(set(getattr(transform, "requires", frozenset()))))
            jobs.append(CropJob(tuple(test.data), "test", spec.frames_test, extras))
    return list(dict.fromkeys(jobs))


def rows_to_crop(selection: Any, adapter: Any, index: pd.DataFrame, requires: Sequence[str]) -> pd.DataFrame:
    """The index rows whose crops ``load_frames`` reads for one selection and its extras."""
    from dfbench.benchmark.data import selection_rows

    return selection_rows(selection, adapter, index, requires)[2]


def warm_protocol(
    jobs: Sequence[CropJob],
    *,
    roots: Mapping[str, Path],
    cache: CropCache,
    input_size: int,
    workers: int = 0,
    device: str = "cpu",
    progress: bool = True,
    ray: str | None = None,
    ray_gpus: float = 0.0,
) -> PreprocessReport:
    """Fill the entries of ``jobs`` (see the module docstring); one combined report."""
    from dfbench.benchmark.data import dataset_index

    todo: dict[tuple[str, int], list[pd.DataFrame]] = {}
    for job in jobs:
        for d in job.data:
            adapter, index = dataset_index(d.dataset, roots[d.dataset])
            todo.setdefault((d.dataset, job.frames), []).append(
                rows_to_crop(d.selection(job.split), adapter, index, job.requires)
            )
    total = PreprocessReport()
    for (dataset, frames), parts in todo.items():
        adapter, index = dataset_index(dataset, roots[dataset])
        rows = pd.concat(parts).drop_duplicates("video_id")
        report, _ = ensure_crops(
            rows,
            cache=cache,
            params=CropParams(frames=frames, size=input_size),
            real_methods=adapter.real_methods,
            qualities=adapter.qualities,
            pool=index,
            progress=progress,
            workers=workers,
            device=device,
            ray=ray,
            ray_gpus=ray_gpus,
        )
        total.total += report.total
        total.cached += report.cached
        total.processed += report.processed
        total.frames += report.frames
        total.detected_references += report.detected_references
        total.failed.update(report.failed)
        total.notes.extend(report.notes)
        total.rebuilt_corrupt.extend(report.rebuilt_corrupt)
        total.keys.update({f"{vid}@{frames}": key for vid, key in report.keys.items()})
        total.seconds += report.seconds
    return total


__all__ = ["CropJob", "protocol_crop_jobs", "rows_to_crop", "warm_protocol"]
