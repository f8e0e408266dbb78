"""Run a protocol × detector × seeds: resolve data, call the protocol's procedure, store rows.

Re-running the same command resumes: finished test cells are not recomputed, a finished
model is reloaded, an interrupted fit continues from its last epoch checkpoint, and no
half-written checkpoint or result is ever read (all writes are temp file + rename).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from dfbench.benchmark import extensions  # noqa: F401  (registers procedures, perturbations, transforms)
from dfbench.benchmark.errors import ConfigError, DatasetError, DfbenchError
from dfbench.benchmark.failures import FailureLog
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.procedures import PROCEDURES, RunContext
from dfbench.benchmark.protocol import DataSpec, ProtocolSpec, load_protocol
from dfbench.benchmark.settings import get_settings
from dfbench.detectors import create_detector

logger = logging.getLogger(__name__)


@dataclass
class RunRequest:
    protocol: str
    detector: str
    preset: str = "mini"
    seeds: Sequence[int] = (0,)
    device: str = "auto"
    data_root: Path | None = None  # None = the embedded synthetic benchmark
    dataset_roots: dict[str, Path] = field(default_factory=dict)
    results_root: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # detector config overrides
    fresh: bool = False  # discard an earlier run of the same cell instead of resuming
    rebuild_cache: bool = False
    progress: bool = True
    quiet: bool = False


def validate_request(request: RunRequest) -> tuple[ProtocolSpec, Any, str]:
    """Check the whole request before any data is generated, preprocessed or loaded: the
    protocol (every key, every registry name), the detector's typed overrides, backbone and
    weights, the device, the dataset roots named on the command line, and that the results,
    cache and (when it must be generated) embedded-data folders can be written.
    Returns (protocol spec, an unfitted detector, device)."""
    from dfbench.benchmark.results import ensure_writable
    from dfbench.benchmark.validate import check_detector, check_spec, check_synthesis
    from dfbench.datasets.base import DATASETS

    spec = load_protocol(request.protocol, request.preset)
    check_spec(spec)
    # the protocol's declared setting for this detector (e.g. the compared paper's own ERM
    # baseline), then the user's overrides, which win
    overrides = {**spec.detector_settings(request.detector), **request.overrides}
    probe = create_detector(request.detector, preset=request.preset, **overrides)
    check_detector(probe)
    check_synthesis(spec, probe)
    # a paper preset's ImageNet weights (or --weights) must be on disk; nothing written yet
    probe.init_provenance()
    device = resolve_device(request.device)
    for name, root in request.dataset_roots.items():
        if name not in DATASETS:
            raise ConfigError(f"--dataset-root {name}=…: unknown dataset {name!r}; known: {', '.join(DATASETS.names())}.")
        if not Path(root).expanduser().is_dir():
            raise ConfigError(f"--dataset-root {name}={root}: the folder does not exist.")
    if request.data_root is not None and not Path(request.data_root).expanduser().is_dir():
        raise ConfigError(f"--data-root {request.data_root}: the folder does not exist.")
    settings = get_settings()
    ensure_writable(request.results_root or settings.results, "The results (--results or DFBENCH_RESULTS)")
    ensure_writable(settings.cache, "The crop-cache (DFBENCH_CACHE, default $DFBENCH_HOME/cache)")
    if request.data_root is None:
        from dfbench.datasets.synth.embedded import embedded_data_complete

        if not embedded_data_complete("mini"):
            ensure_writable(settings.data, "The embedded-data (DFBENCH_DATA, default $DFBENCH_HOME/data)")
    return spec, probe, device


def resolve_device(device: str) -> str:
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} was asked for but CUDA is not available; use --device cpu or auto.")
    return device


class DataResolver:
    """Maps dataset names to roots (embedded or real) and loads frames through the crop cache."""

    def __init__(self, request: RunRequest, spec: ProtocolSpec, input_size: int) -> None:
        from dfbench.benchmark import data as data_module
        from dfbench.benchmark.preprocess.cache import CropCache

        self.request = request
        self.spec = spec
        self.input_size = input_size
        self._data = data_module
        self.embedded = request.data_root is None
        # datasets given by --dataset-root are not looked up (nor an on-demand stand-in made for them)
        wanted = [d for d in spec.datasets() if d not in request.dataset_roots]
        self.roots: dict[str, Path] = data_module.default_roots(request.data_root, wanted, progress=request.progress)
        self.roots.update({k: Path(v) for k, v in request.dataset_roots.items()})
        cache_root = get_settings().cache
        from dfbench.benchmark import distributed

        if request.rebuild_cache and cache_root.exists() and distributed.is_main():  # not under other ranks' feet
            shutil.rmtree(cache_root)
        self.cache = CropCache(cache_root)
        self._memo: OrderedDict[tuple, FrameSet] = OrderedDict()
        # every rejected dataset entry and failed video of the data this run loads
        self.failures = FailureLog()

    def available(self, dataset: str) -> bool:
        root = self.roots.get(dataset)
        return root is not None and Path(root).is_dir()

    def require(self, spec: ProtocolSpec) -> list[str]:
        """Raise for a missing required dataset; return the optional tests that will be skipped."""
        needed = {d.dataset for t in spec.trainings for d in t.data}
        needed |= {d.dataset for t in spec.tests if not t.optional for d in t.data}
        for name in sorted(needed):
            if not self.available(name):
                where = "the embedded benchmark has no stand-in for it" if self.embedded else f"looked in {self.roots.get(name)}"
                raise DatasetError(
                    f"Protocol {spec.name!r} needs dataset {name!r} ({where}); supply it with --data-root DIR "
                    f"(a folder holding the official layout) or --dataset-root {name}=PATH."
                )
        return [t.name for t in spec.tests if t.optional and not self._has_test_videos(t.data)]

    def _has_test_videos(self, data: Sequence[DataSpec]) -> bool:
        """Every dataset present and holding fake test videos for its selection (e.g. the
        embedded FF++ stand-in has no DeepFakeDetection: the optional DFD test is skipped)."""
        for d in data:
            if not self.available(d.dataset):
                return False
            adapter, index = self._data.dataset_index(d.dataset, self.roots[d.dataset])
            rows = d.selection("test").apply(index, adapter.real_methods)
            if not (rows["label"] == 1).any():
                return False
        return True

    def load(self, data: list[DataSpec], split: str, per_video: int, requires: tuple[str, ...]) -> FrameSet:
        from dfbench.benchmark.preprocess.cache import CropParams

        key = (tuple(data), split, per_video, requires)
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        failed: dict[str, str] = {}
        try:
            frames = self._data.load_frames(
                [d.selection(split) for d in data],
                roots=self.roots,
                cache=self.cache,
                crop=CropParams(frames=per_video, size=self.input_size),
                requires=requires,
                progress=self.request.progress,
                failures=failed,
            )
        finally:
            self.failures.add_videos(failed)
            for name in dict.fromkeys(d.dataset for d in data):
                # an index that could not be built raised already: its error is the one to show
                with contextlib.suppress(DfbenchError):
                    adapter, _ = self._data.dataset_index(name, self.roots[name])
                    self.failures.add_rejected(adapter.rejected)
        self._memo[key] = frames
        while len(self._memo) > 6:  # bounded: test sets are reused across trainings
            self._memo.popitem(last=False)
        return frames


def _check_resume(store: Any, run_dir: Path, meta: dict[str, Any], fresh: bool) -> None:
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
        return
    if not (run_dir / "run.json").exists():
        return
    old = store.read_run_meta(run_dir) or {}
    # a run started before weights were recorded has no weights_sha256: it was not pretrained
    # a plug-in detector whose file changed since is other code: its model is not reused
    for key, absent in (("config_hash", None), ("protocol_hash", None), ("weights_sha256", ""), ("detector_sha256", "")):
        if old.get(key, absent) != meta[key]:
            raise ConfigError(
                f"{run_dir} holds a run with another {key.replace('_', ' ')} ({old.get(key)} vs {meta[key]}); "
                f"pass --fresh to discard it or --results DIR to keep both."
            )


def run(request: RunRequest, *, failures: FailureLog | None = None) -> pd.DataFrame:
    """Run every seed of one protocol × detector; returns this run's result rows.

    ``failures`` (optional) receives every rejected dataset entry and failed video of the
    data the run loaded, also when the run stops with an error (the CLI prints its summary).
    """
    from dfbench.benchmark import distributed
    from dfbench.benchmark.environment import environment_info
    from dfbench.benchmark.logs import console_logging, run_log
    from dfbench.benchmark.plugins import plugin_identity
    from dfbench.benchmark.progress import ProgressReporter
    from dfbench.benchmark.results import ResultsStore

    distributed.init_from_env()  # under torchrun: join the process group (no-op otherwise)
    spec, probe, device = validate_request(request)
    device = distributed.rank_device(device)
    procedure = PROCEDURES.get(spec.procedure)
    config = probe.get_config()
    # before any data work: a paper preset's ImageNet weights (or --weights) must be on disk
    init = probe.init_provenance()
    with distributed.rank_zero_first():  # under torchrun: one rank generates data / clears the cache
        resolver = DataResolver(request, spec, config.input_size)
    if failures is not None:
        resolver.failures = failures
    skipped = resolver.require(spec)
    main = distributed.is_main()  # other torchrun ranks run silently into a scratch store
    if not main:
        console_logging(logging.WARNING)  # their epoch lines would repeat rank 0's in the terminal
    # quiet: the runner's messages go to DEBUG (hidden in the terminal), epoch lines stay
    log = logger.debug if request.quiet else logger.info
    for name in skipped:
        log(f"note: optional test {name!r} skipped: its data is not available (supply it with --data-root).")
    main_store = ResultsStore(request.results_root or get_settings().results)
    store = ResultsStore(distributed.results_root(main_store.root))
    env = environment_info(device)
    all_rows = []
    for seed in request.seeds:
        run_dir = store.run_dir(spec.name, request.detector, config.backbone, request.preset, seed)
        meta = {
            "protocol": spec.name,
            "protocol_version": spec.version,
            "protocol_hash": spec.spec_hash(),
            "detector": request.detector,
            "backbone": config.backbone,
            "preset": request.preset,
            "seed": seed,
            "config_hash": config.config_hash(),
            "pretrained": init["pretrained"],
            "weights_sha256": init["weights_sha256"] or "",
            "data_kind": "synthetic-mini" if resolver.embedded else "real",
            "device": env.get("device", device),
            "versions": json.dumps(env.get("versions", {}), sort_keys=True),
            "git_hash": env.get("git_hash"),
            **plugin_identity(request.detector),
            "trained_here": True,
        }
        distributed.mirror_run_dir(main_store.run_dir(spec.name, request.detector, config.backbone, request.preset, seed), run_dir)
        _check_resume(store, run_dir, meta, request.fresh)
        # a resumed run reuses cells scored without the inputs that failed then: report them again
        resolver.failures.merge_json(store.read_run_meta(run_dir) or {})
        run_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        store.write_run_meta(run_dir, {
            **meta, "status": "partial", "run_id": run_id, "started": datetime.now(timezone.utc).isoformat(),
            "protocol_spec": spec.raw, "detector_config": config.to_dict(), "environment": env,
            "protocol_detector_settings": spec.detector_settings(request.detector), "weights_file": init["weights_file"],
            "roots": {k: str(v) for k, v in resolver.roots.items()},
        })
        with run_log(run_dir), ProgressReporter(enabled=request.progress and main) as progress:
            log(f"run {spec.name} × {request.detector} ({config.backbone}, {request.preset}), seed {seed}: {run_dir}")
            ctx = RunContext(
                spec=spec,
                detector_name=request.detector,
                preset=request.preset,
                seed=seed,
                device=device,
                run_dir=run_dir,
                frame_loader=resolver.load,
                store=store,
                detector_overrides={**spec.detector_settings(request.detector), **request.overrides},
                run_meta={**meta, "run_id": run_id, "timestamp": datetime.now(timezone.utc).isoformat()},
                progress=progress.update,
                log=log,
                available=resolver.available,
                skip_tests=frozenset(skipped),
            )
            procedure(ctx)
        wall = time.perf_counter() - started
        store.write_run_meta(run_dir, {
            **(store.read_run_meta(run_dir) or {}), "status": "complete", "wall_time_s": wall,
            "finished": datetime.now(timezone.utc).isoformat(), "data_fingerprints": ctx.fingerprints,
            "model_data_fingerprints": ctx.model_fingerprints,
            **resolver.failures.to_json(),
        })
        distributed.barrier()  # rank 0's rows are complete before any rank returns
        rows = store.read_run(run_dir)
        all_rows.append(rows)
        with run_log(run_dir):  # the closing line belongs in the run's log too
            log(f"seed {seed}: {len(rows)} result rows in {run_dir} ({wall:.1f} s)")
    return pd.concat(all_rows, ignore_index=True) if all_rows else pd.DataFrame()


def matrix_table(rows: pd.DataFrame, *, metric: str = "auc", level: str = "video") -> pd.DataFrame:
    """Mean over seeds, rows = training, columns = test (the papers' matrix layout).

    Rows and columns follow the protocol's YAML (raw, c23, c40), not the store's file order;
    strengths ascend within a test.
    """
    from dfbench.benchmark.results import in_order, protocol_axes

    sel = rows[(rows["metric"] == metric) & (rows["level"] == level)]
    if sel.empty:
        return pd.DataFrame()
    key = sel["test"].astype(str)
    perturbed = "perturbation" in sel and (sel["perturbation"].astype(str) != "").any()
    if perturbed:
        key = key + " " + sel["perturbation"].astype(str) + "=" + sel["strength"].astype(str)
    sel = sel.assign(column=key, row=sel["training"].astype(str))
    if "variant" in sel and (sel["variant"].astype(str) != "").any():
        sel = sel.assign(row=sel["row"] + " " + sel["variant"].astype(str))
    table = sel.pivot_table(index="row", columns="column", values="value", aggfunc="mean", sort=False)
    table.index.name = "training"
    trainings, tests = protocol_axes(str(sel["protocol"].iloc[0])) if "protocol" in sel else ((), ())
    firsts = sel.drop_duplicates("row")
    row_rank = {t: i for i, t in enumerate(in_order(sel["training"].astype(str), trainings))}
    row_key = {r: (row_rank[t], i) for i, (r, t) in enumerate(zip(firsts["row"], firsts["training"].astype(str)))}
    test_rank = {t: i for i, t in enumerate(in_order(sel["test"].astype(str), tests))}
    cols = sel.drop_duplicates("column")
    strengths = pd.to_numeric(cols["strength"], errors="coerce") if perturbed else pd.Series(0.0, index=cols.index)
    col_key = {
        c: (test_rank[str(t)], 0.0 if pd.isna(s) else float(s), i)
        for i, (c, t, s) in enumerate(zip(cols["column"], cols["test"], strengths))
    }
    return table.reindex(
        index=sorted(table.index, key=row_key.__getitem__), columns=sorted(table.columns, key=col_key.__getitem__)
    )
