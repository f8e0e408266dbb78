"""The run matrix: every (protocol, detector, seed) cell of a study, in one results store.

``dfbench sweep --protocol P [P ...] --detector D [D ...] --seeds K`` runs each cell with
``runner.run`` (one seed per cell), so a cell is exactly ``dfbench run --seed k`` and writes
the same run directory. Without ``--ray`` the cells run one after another in this process;
with ``--ray auto|ADDRESS`` each cell is a Ray task with its own resource request
(``--cpus-per-cell``, ``--gpus-per-cell``), and Ray places the tasks on the cluster's nodes.
Both paths call the same ``run_cell``.

Resume: a cell whose run.json says ``complete`` for the same protocol and config hashes is
skipped before any task starts; any other cell is (re)started and ``runner.run`` resumes it
(finished test cells kept, a finished model reloaded, an interrupted fit continued).
A task whose worker dies (killed, out of memory, node lost) is retried by Ray up to
``max_retries`` times; one that raises is reported as failed with its error and the
others carry on. Ray is optional (``pip install -e ".[ray]"``) and imported only here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfbench.benchmark.errors import ConfigError

RAY_INSTALL = 'Ray is not installed; install the optional extra with: pip install -e ".[ray]" (or pip install "ray>=2.9,<3").'
ATTEMPTS_DIR = ".sweep"  # under the results root; hidden, so the store's run scan never sees it


@dataclass(frozen=True)
class Cell:
    protocol: str
    detector: str
    seed: int

    @property
    def key(self) -> str:
        return f"{Path(self.protocol).stem}__{self.detector}__seed{self.seed}"

    def __str__(self) -> str:
        return f"{self.protocol} × {self.detector} × seed {self.seed}"


@dataclass
class SweepReport:
    done: list[Cell] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)  # complete before the sweep started
    failed: dict[Cell, str] = field(default_factory=dict)
    attempts: dict[Cell, int] = field(default_factory=dict)  # cells that needed more than one
    wall_s: float = 0.0

    def summary(self) -> str:
        lines = [f"sweep: {len(self.done)} cell(s) run, {len(self.skipped)} already complete, "
                 f"{len(self.failed)} failed ({self.wall_s:.1f} s)"]
        lines += [f"  retried: {c} ({n} attempts)" for c, n in self.attempts.items() if n > 1]
        lines += [f"  failed: {c}: {err}" for c, err in self.failed.items()]
        return "\n".join(lines)


def sweep_cells(protocols: Sequence[str], detectors: Sequence[str], seeds: Sequence[int]) -> list[Cell]:
    """Protocol-major order (the order of the command line). A protocol given as a YAML file
    is named by its absolute path: a Ray worker does not start in this folder."""
    protocols = [str(Path(p).resolve()) if Path(p).is_file() else p for p in protocols]
    return [Cell(p, d, int(s)) for p in protocols for d in detectors for s in seeds]


def _request(cell: Cell, base: dict[str, Any]) -> Any:
    from dfbench.benchmark.runner import RunRequest

    return RunRequest(protocol=cell.protocol, detector=cell.detector, seeds=(cell.seed,), progress=False, quiet=True, **base)


def cell_complete(cell: Cell, base: dict[str, Any]) -> bool:
    """The cell's run.json says complete for this protocol spec and detector config."""
    from dfbench.benchmark.protocol import load_protocol
    from dfbench.benchmark.results import ResultsStore
    from dfbench.benchmark.settings import get_settings
    from dfbench.detectors import create_detector

    request = _request(cell, base)
    spec = load_protocol(request.protocol, request.preset)
    config = create_detector(cell.detector, preset=request.preset,
                             **{**spec.detector_settings(cell.detector), **request.overrides}).get_config()
    store = ResultsStore(request.results_root or get_settings().results)
    meta = store.read_run_meta(store.run_dir(spec.name, cell.detector, config.backbone, request.preset, cell.seed)) or {}
    return (meta.get("status") == "complete" and meta.get("config_hash") == config.config_hash()
            and meta.get("protocol_hash") == spec.spec_hash())


def _attempt_file(cell: Cell, base: dict[str, Any]) -> Path:
    from dfbench.benchmark.settings import get_settings

    root = Path(base.get("results_root") or get_settings().results)
    return root / ATTEMPTS_DIR / f"{cell.key}.attempts"


def run_cell(cell: Cell, base: dict[str, Any], threads: int = 0) -> dict[str, Any]:
    """One cell (``dfbench run`` for one seed, quietly); the same code in-process and in a Ray task."""
    import torch

    from dfbench.benchmark.runner import run

    if threads > 0:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    rows = run(_request(cell, base))
    return {"rows": len(rows), "wall_s": time.perf_counter() - started}


CellFn = Callable[[Cell, dict[str, Any], int], dict[str, Any]]


def counted(cell_fn: CellFn, cell: Cell, base: dict[str, Any], threads: int) -> dict[str, Any]:
    """``cell_fn`` after counting this attempt in ``<results>/.sweep`` (a retried cell is reported;
    "running" in the progress line = cells with an attempt started)."""
    from dfbench.benchmark.results import atomic_write_bytes

    counter = _attempt_file(cell, base)
    attempt = 1 + (int(counter.read_text()) if counter.exists() else 0)
    atomic_write_bytes(counter, str(attempt).encode())
    return {**cell_fn(cell, base, threads), "attempt": attempt}


def run_sweep(
    cells: Sequence[Cell],
    base: dict[str, Any],
    *,
    ray_address: str | None = None,
    cpus_per_cell: float = 1.0,
    gpus_per_cell: float = 0.0,
    max_retries: int = 2,
    log: Callable[[str], None] = print,
    cell_fn: CellFn = run_cell,
) -> SweepReport:
    """Run ``cells`` (skipping complete ones) sequentially or, with ``ray_address``, as Ray tasks.
    ``cell_fn`` is ``run_cell`` (tests wrap it to kill a first attempt)."""
    base = dict(base)
    if base.get("results_root") is not None:
        base["results_root"] = Path(base["results_root"]).expanduser().resolve()  # workers may run elsewhere
    report = SweepReport()
    started = time.perf_counter()
    todo = []
    for cell in cells:
        (report.skipped if cell_complete(cell, base) else todo).append(cell)
    if report.skipped:
        log(f"sweep: {len(report.skipped)} of {len(cells)} cell(s) already complete (skipped)")
    for cell in todo:
        _attempt_file(cell, base).unlink(missing_ok=True)  # attempts of this sweep only
    if ray_address is None:
        _sequential(todo, base, cpus_per_cell, report, log, cell_fn)
    else:
        _on_ray(todo, base, ray_address, cpus_per_cell, gpus_per_cell, max_retries, report, log, cell_fn)
    report.wall_s = time.perf_counter() - started
    return report


def _threads(cpus: float) -> int:
    return max(1, int(cpus))


def _sequential(todo, base, cpus, report: SweepReport, log, cell_fn: CellFn) -> None:
    for cell in todo:
        log(f"sweep: done {len(report.done)}/{len(todo)}, running 1, failed {len(report.failed)}: {cell}")
        try:
            out = counted(cell_fn, cell, base, _threads(cpus))
        except Exception as exc:  # reported like a failed Ray task; the other cells still run
            report.failed[cell] = _task_error(exc)
            continue
        report.done.append(cell)
        report.attempts[cell] = int(out.get("attempt", 1))
    log(f"sweep: done {len(report.done)}/{len(todo)}, running 0, failed {len(report.failed)}")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_INSTALL) from None
    return ray


def connect_ray(address: str) -> Any:
    """Join a Ray cluster: ``auto`` = the running cluster when there is one, else a local one
    on this machine; otherwise the given address (``HOST:PORT`` or ``ray://HOST:PORT``).
    A driver that called ``ray.init`` already keeps its connection."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address == "auto":
        try:
            ray.init(address="auto", include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError):
            ray.init(include_dashboard=False, log_to_driver=False)
    else:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster there ({exc}); start one with `ray start --head`.") from None
    return ray


def _worker_env() -> dict[str, str]:
    """dfbench's settings travel with each task (a worker on another node has its own environment)."""
    return {k: v for k, v in os.environ.items() if k.startswith("DFBENCH_")}


def _on_ray(todo, base, address, cpus, gpus, max_retries, report: SweepReport, log, cell_fn: CellFn) -> None:
    ray = connect_ray(address)
    task = ray.remote(counted).options(
        num_cpus=cpus, num_gpus=gpus, max_retries=max_retries, retry_exceptions=False,
        runtime_env={"env_vars": _worker_env()}, name="dfbench-cell",
    )
    pending = {task.remote(cell_fn, cell, base, _threads(cpus)): cell for cell in todo}

    def show() -> None:
        running = sum(_attempt_file(c, base).exists() for c in pending.values())
        log(f"sweep: done {len(report.done)}/{len(todo)}, running {running}, "
            f"queued {len(pending) - running}, failed {len(report.failed)}")

    show()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=30.0)
        for ref in ready:
            cell = pending.pop(ref)
            try:
                out = ray.get(ref)
            except Exception as exc:  # the task raised, or its worker died more than max_retries times
                report.failed[cell] = _task_error(exc)
                log(f"sweep: failed: {cell}: {report.failed[cell]}")
            else:
                report.done.append(cell)
                report.attempts[cell] = int(out.get("attempt", 1))
        show()


def _task_error(exc: BaseException) -> str:
    """The cell's own error when the task raised one (a DfbenchError's sentence), else Ray's."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def ray_futures(address: str, calls: Sequence[tuple[Callable[..., Any], tuple]], *, gpus: float = 0.0,
                max_retries: int = 2) -> list[Any]:
    """``fn(*args)`` for each call as a one-CPU Ray task (``gpus`` GPUs each), as
    ``concurrent.futures`` futures (what ``dfbench preprocess --workers`` collects)."""
    ray = connect_ray(address)
    remotes: dict[Any, Any] = {}
    out = []
    for fn, args in calls:
        if fn not in remotes:
            remotes[fn] = ray.remote(fn).options(num_cpus=1, num_gpus=gpus, max_retries=max_retries,
                                                 runtime_env={"env_vars": _worker_env()})
        out.append(remotes[fn].remote(*args).future())
    return out
