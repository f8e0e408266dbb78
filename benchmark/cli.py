"""The ``dfbench`` command line.

  dfbench run --protocol cross_quality --detector erm           # embedded data, CPU ok
  dfbench sweep --protocol P [P ...] --detector D [D ...] --seeds K [--ray auto|ADDRESS]
  dfbench leaderboard                                           # HTML + CSV + Markdown
  dfbench check [--protocol P --detector D]                     # regression check vs reference AUCs
  dfbench preprocess --protocol cross_quality [--preset paper]    # warm the run's crop cache
  dfbench preprocess --dataset ffpp --root DIR [--device cuda --workers 4]
  dfbench datasets check ROOT [--dataset ffpp]
  dfbench data synth [--out DIR] [--scale mini]
  dfbench list detectors|protocols|datasets
  dfbench papers [--paper P] [--brief] [--csv FILE]             # which paper numbers dfbench reproduces
  dfbench score VIDEO|DIR --checkpoint model.pt [--out scores.csv|.json] [--frames N] [--device D]
  dfbench --version
  dfbench check-detector NAME|file.py:Class                      # the common detector checks
  dfbench eval --protocol P --checkpoint [TRAINING=]PATH          # score a trained model, no training
  dfbench export-testlist --protocol P --out list.csv            # the test videos/frames to score
  dfbench eval --protocol P --predictions scores.csv --name M    # someone else's scores, same metrics

Progress messages (one line per training epoch among them) go through Python ``logging``
to stderr; results (tables, paths) go to stdout. Each run folder keeps a ``run.log``.

User mistakes end with one ``error:`` line and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from dfbench.benchmark.errors import ConfigError, DfbenchError


def _parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} expects KEY=VALUE, got {item!r}.")
        out[key.strip()] = yaml.safe_load(value)  # numbers, booleans, lists as YAML
    return out


def _require_writable(folder: Path, what: str) -> None:
    """Fail before any work when an output folder cannot be written (one error line)."""
    from dfbench.benchmark.results import ensure_writable

    ensure_writable(folder, what)


def _write_failure(exc: OSError) -> str | None:
    """One line for a write that failed on a full or read-only file system (else None)."""
    from dfbench.benchmark.results import WRITE_ERRNOS, write_error

    if exc.errno not in WRITE_ERRNOS:
        return None
    target = Path(exc.filename) if exc.filename else Path("?")
    return str(write_error(target.parent if target.suffix else target, exc))


def _failure_log() -> Any:
    from dfbench.benchmark.failures import FailureLog

    return FailureLog()


def _print_failures(failures: Any, *, only_if_any: bool = False) -> None:
    if failures or not only_if_any:
        print("\n" + failures.summary(), flush=True)


def _finish(failures: Any, allow_failures: bool) -> int:
    """The run's last words: the failure summary, and exit code 1 when an input failed
    (0 with ``--allow-failures``); see the README's exit codes."""
    from dfbench.benchmark.failures import EXIT_FAILED_INPUTS, EXIT_OK

    _print_failures(failures)
    if failures and not allow_failures:
        print(
            f"failed: {len(failures)} input(s) were rejected or failed (listed above); exit code "
            f"{EXIT_FAILED_INPUTS}. Pass --allow-failures to accept them.",
            file=sys.stderr,
        )
        return EXIT_FAILED_INPUTS
    return EXIT_OK


def _seeds(args: argparse.Namespace) -> list[int]:
    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1.")
    return list(range(args.seed, args.seed + args.seeds))


def _set_threads(threads: int) -> None:
    if threads < 0:
        raise ConfigError("--threads must be 0 (torch's default) or a positive number.")
    if threads:
        import torch

        torch.set_num_threads(threads)


def cmd_run(args: argparse.Namespace) -> int:
    from dfbench.benchmark.runner import RunRequest, run

    _set_threads(args.threads)

    overrides = _parse_assignments(args.set, "--set")
    if args.backbone:
        overrides["backbone"] = args.backbone
    if args.weights:
        overrides["weights"] = args.weights
    if args.pretrained:
        overrides["pretrained"] = True
    request = RunRequest(
        protocol=args.protocol,
        detector=args.detector,
        preset=args.preset,
        seeds=_seeds(args),
        device=args.device,
        data_root=Path(args.data_root) if args.data_root else None,
        dataset_roots={k: Path(str(v)) for k, v in _parse_assignments(args.dataset_root, "--dataset-root").items()},
        results_root=Path(args.results) if args.results else None,
        overrides=overrides,
        fresh=args.fresh,
        rebuild_cache=args.rebuild_cache,
        progress=not args.no_progress,
    )
    failures = _failure_log()
    try:
        rows = run(request, failures=failures)
    except DfbenchError:
        _print_failures(failures, only_if_any=True)
        raise
    from dfbench.benchmark import distributed

    if not distributed.is_main():
        return 0  # torchrun: rank 0 prints the tables and the failure summary
    _print_matrices(rows, f"(mean over {len(request.seeds)} seed(s))", request)
    return _finish(failures, args.allow_failures)


def _print_matrices(rows: Any, what: str, request: Any) -> None:
    """The video- and frame-level AUC matrices of a run's rows (training × test, protocol order),
    with the derived columns (``averages:``) of the request's protocol after its tests."""
    import pandas as pd

    from dfbench.benchmark.protocol import load_protocol
    from dfbench.benchmark.results import with_averages
    from dfbench.benchmark.runner import matrix_table

    spec = load_protocol(request.protocol, request.preset)  # a YAML path too: rows name only the protocol
    rows = with_averages(rows, {spec.name: spec.averages})
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 4):
        for level in ("video", "frame"):
            table = matrix_table(rows, metric="auc", level=level)
            if not table.empty:
                print(f"\n{level}-level AUC {what}; {format_matrix(table)}")


MATRIX_MAX_COLUMNS = 10  # wider than this, a matrix line outgrows a terminal
MATRIX_MAX_LABEL = 40  # an average over every training is labelled by all their names joined


def format_matrix(table: Any) -> str:
    """A training × test AUC table as text: the matrix while it fits a terminal, else one line
    per measured cell (laundering's 66 perturbed columns, quality_aware's 21 × 21 diagonal).
    Training labels longer than MATRIX_MAX_LABEL are cut with "…" (the results keep them whole)."""
    table = table.rename(index=lambda t: t if len(str(t)) <= MATRIX_MAX_LABEL else f"{str(t)[: MATRIX_MAX_LABEL - 1]}…")
    if table.shape[1] <= MATRIX_MAX_COLUMNS:
        return "rows = training, columns = test\n" + table.to_string()
    cells = table.stack().dropna().rename("AUC").rename_axis(["training", "test"]).reset_index()
    return "one line per cell\n" + cells.to_string(index=False)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from dfbench.benchmark.leaderboard import build_leaderboard, load_reference
    from dfbench.benchmark.results import ResultsStore
    from dfbench.benchmark.settings import get_settings

    store = ResultsStore(Path(args.results) if args.results else get_settings().results)
    out = Path(args.out) if args.out else store.root.parent / "leaderboard"
    _require_writable(out, "The leaderboard (--out)")
    results = store.read_all()
    if results.empty:
        raise DfbenchError(f"No results under {store.root}; run `dfbench run ...` first or pass --results DIR.")
    paths = build_leaderboard(results, out, reference=load_reference())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def cmd_papers(args: argparse.Namespace) -> int:
    """Per paper table: printed numbers, those with a dfbench cell, and why the rest have none."""
    from dfbench.benchmark.leaderboard import load_reference
    from dfbench.benchmark.papers import coverage_rows, render_coverage, summarize_coverage

    reference = load_reference()
    if args.paper:
        known = sorted(reference["paper"].unique())
        if args.paper not in known:
            raise ConfigError(f"Unknown paper {args.paper!r}; the reference CSV has {', '.join(known)}.")
        reference = reference[reference["paper"] == args.paper]
    rows = coverage_rows(reference)
    tables = [t for t in summarize_coverage(rows) if not args.paper or t.paper == args.paper]
    print(render_coverage(tables, details=not args.brief), end="")
    if args.csv:
        from dfbench.benchmark.results import atomic_write_bytes, csv_bytes

        atomic_write_bytes(Path(args.csv), csv_bytes(rows.drop(columns=["covers"])))  # formula-safe
        print(f"csv: {args.csv}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from importlib import resources

    from dfbench.benchmark.check import check_against_reference, write_reference
    from dfbench.benchmark.results import ResultsStore
    from dfbench.benchmark.settings import get_settings

    # float reductions depend on the thread count: the check pins it so a reference written on
    # one machine reproduces on another of the same kind
    _set_threads(args.threads)
    reference = Path(args.reference) if args.reference else Path(str(resources.files("dfbench.reference") / "mini.json"))
    results_root = Path(args.results) if args.results else get_settings().results
    only = None
    if args.protocol:
        from dfbench.benchmark.protocol import load_protocol
        from dfbench.benchmark.runner import RunRequest, run

        seeds = _seeds(args)
        failures = _failure_log()
        run(RunRequest(protocol=args.protocol, detector=args.detector, seeds=seeds, results_root=results_root,
                       overrides=_parse_assignments(args.set, "--set"), progress=not args.no_progress),
            failures=failures)
        _print_failures(failures, only_if_any=True)
        # compare (or write) only the cells of this run; the file holds every study's cells
        only = {"protocol": [load_protocol(args.protocol).name], "detector": [args.detector], "seed": seeds}
    results = ResultsStore(results_root).read_all()
    if args.write:
        write_reference(results, reference, tolerance=args.tolerance, only=only)
        print(f"wrote reference AUCs to {reference}")
        return 0
    if not reference.is_file():
        raise DfbenchError(f"Reference file {reference} does not exist; create it with `dfbench check --write`.")
    # without --protocol: every run in the results folder against its own reference cells
    outcome = check_against_reference(results, reference, tolerance=args.tolerance, only=only, runs_in_results=only is None)
    print(outcome.report() if hasattr(outcome, "report") else outcome)
    return 0 if outcome.ok else 1


def cmd_preprocess(args: argparse.Namespace) -> int:
    from dfbench.benchmark.preprocess.cache import CropCache, CropParams
    from dfbench.benchmark.runner import resolve_device
    from dfbench.benchmark.settings import get_settings

    if args.workers < 0:
        raise ConfigError("--workers must be 0 (one process) or a positive number of processes.")
    ray_opts = _preprocess_ray(args)
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise ConfigError(f"--device {args.device!r} is not one of auto, cpu, cuda, cuda:N.")
    device = resolve_device(args.device)  # a clear error when CUDA is asked for but absent
    if device == "mps":
        device = "cpu"  # "auto" on a Mac picks mps; MTCNN runs on CPU or CUDA here
    cache = CropCache(Path(args.cache) if args.cache else get_settings().cache)
    _require_writable(cache.root, "The crop-cache (--cache or DFBENCH_CACHE)")
    progress = not args.no_progress
    failures = _failure_log()
    if args.protocol:
        if args.dataset or args.root or args.frames is not None or args.size is not None or args.detect_size is not None:
            raise ConfigError(
                "--protocol takes the videos, frames and crop size from the protocol and detector; "
                "drop --dataset/--root/--frames/--size/--detect-size (use --data-root/--dataset-root for the data)."
            )
        report = _preprocess_protocol(args, cache, device, progress, ray_opts)
    else:
        if not (args.dataset and args.root):
            raise ConfigError("dfbench preprocess needs --protocol P, or --dataset NAME and --root DIR.")
        from dfbench.benchmark.preprocess.faces import DETECT_SIZE
        from dfbench.benchmark.preprocess.pipeline import preprocess
        from dfbench.datasets.base import get_dataset

        params = CropParams(  # checked before any data is read
            frames=32 if args.frames is None else args.frames,
            size=299 if args.size is None else args.size,
            detect_size=DETECT_SIZE if args.detect_size is None else args.detect_size,
        )
        adapter = get_dataset(args.dataset, args.root)
        index = adapter.build_index()
        report = preprocess(index, cache=cache, params=params, adapter=adapter, progress=progress,
                            workers=args.workers, device=device, **ray_opts)
        failures.add_rejected(adapter.rejected)
    if args.protocol or not progress:  # with progress, the dataset mode's preprocess() printed it
        print(report.summary())
    failures.add_videos(report.failed)
    return _finish(failures, args.allow_failures)


def _preprocess_ray(args: argparse.Namespace) -> dict[str, Any]:
    """``--ray``: join the cluster now (a missing Ray or a wrong address fails before any work)."""
    if args.ray is None:
        if args.gpus_per_task is not None:
            raise ConfigError("--gpus-per-task is a Ray resource request; add --ray auto|ADDRESS.")
        return {}
    from dfbench.benchmark.sweep import connect_ray

    connect_ray(args.ray)
    gpus = args.gpus_per_task if args.gpus_per_task is not None else (1.0 if args.device.startswith("cuda") else 0.0)
    return {"ray": args.ray, "ray_gpus": gpus}


def _preprocess_protocol(args: argparse.Namespace, cache: Any, device: str, progress: bool, ray_opts: dict[str, Any]) -> Any:
    """Fill the entries ``dfbench run --protocol P --detector D --preset X`` reads."""
    from dfbench.benchmark.preprocess.warm import protocol_crop_jobs, warm_protocol
    from dfbench.benchmark.protocol import load_protocol
    from dfbench.benchmark.runner import DataResolver, RunRequest
    from dfbench.detectors import create_detector

    overrides = _parse_assignments(args.set, "--set")
    spec = load_protocol(args.protocol, args.preset)
    probe = create_detector(args.detector, preset=args.preset, **overrides)
    request = RunRequest(
        protocol=args.protocol,
        detector=args.detector,
        preset=args.preset,
        data_root=Path(args.data_root) if args.data_root else None,
        dataset_roots={k: Path(str(v)) for k, v in _parse_assignments(args.dataset_root, "--dataset-root").items()},
        overrides=overrides,
        progress=progress,
    )
    input_size = probe.get_config().input_size
    resolver = DataResolver(request, spec, input_size)  # the run's dataset roots
    skipped = resolver.require(spec)
    jobs = protocol_crop_jobs(spec, probe.requires, resolver.available, skipped)
    return warm_protocol(jobs, roots=resolver.roots, cache=cache, input_size=input_size,
                         workers=args.workers, device=device, progress=progress, **ray_opts)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Every (protocol, detector, seed) cell into one results store; sequential or on Ray."""
    from dfbench.benchmark.sweep import connect_ray, run_sweep, sweep_cells

    if args.seeds < 1:
        raise ConfigError("--seeds must be 1 or more.")
    if args.cpus_per_cell <= 0 or args.gpus_per_cell < 0 or args.max_retries < 0:
        raise ConfigError("--cpus-per-cell must be > 0, --gpus-per-cell and --max-retries >= 0.")
    if args.ray is None and args.gpus_per_cell:
        raise ConfigError("--gpus-per-cell is a Ray resource request; add --ray auto|ADDRESS (or use --device for a sequential sweep).")
    if args.ray is not None:
        connect_ray(args.ray)  # a missing Ray or a wrong address fails before any cell
    base = {
        "preset": args.preset,
        "device": args.device,
        "data_root": Path(args.data_root) if args.data_root else None,
        "dataset_roots": {k: Path(str(v)) for k, v in _parse_assignments(args.dataset_root, "--dataset-root").items()},
        "results_root": Path(args.results) if args.results else None,
        "overrides": _parse_assignments(args.set, "--set"),
    }
    cells = sweep_cells(args.protocol, args.detector, range(args.seed, args.seed + args.seeds))
    report = run_sweep(cells, base, ray_address=args.ray, cpus_per_cell=args.cpus_per_cell,
                       gpus_per_cell=args.gpus_per_cell, max_retries=args.max_retries,
                       log=lambda msg: print(msg, flush=True))
    print(report.summary())
    return 1 if report.failed else 0


def cmd_datasets_check(args: argparse.Namespace) -> int:
    from dfbench.datasets.base import get_dataset

    adapter = get_dataset(args.dataset or _recognise_dataset(Path(args.root)), args.root)
    report = adapter.check()
    print(f"{report.dataset} at {report.root}")
    if not report.counts.empty:
        print(report.counts.to_string())
    for note in report.notes:
        print(f"note: {note}")
    for problem in report.problems:
        print(f"problem: {problem}")
    print("layout OK" if report.ok else f"{len(report.problems)} problem(s) found")
    return 0 if report.ok else 1


def _recognise_dataset(root: Path) -> str:
    """The one dataset whose official layout ``root`` holds, or an error asking for --dataset."""
    from dfbench.datasets import DATASETS

    if not root.is_dir():
        raise DfbenchError(f"Dataset root {root} does not exist.")
    found = [name for name in DATASETS.names() if DATASETS.get(name).looks_like(root)]
    if len(found) != 1:
        what = "matches no known layout" if not found else f"looks like several datasets ({', '.join(found)})"
        raise DfbenchError(f"{root} {what}; pass --dataset NAME (one of {', '.join(DATASETS.names())}).")
    return found[0]


def cmd_synth(args: argparse.Namespace) -> int:
    from dfbench.datasets.synth import ensure_embedded_data, generate_ffpp_like

    if args.out:
        _require_writable(Path(args.out).parent, "The --out")
        path = generate_ffpp_like(Path(args.out), scale=args.scale, seed=args.seed, progress=not args.no_progress)
    else:
        path = ensure_embedded_data(args.scale, progress=not args.no_progress)
    print(f"embedded benchmark ({args.scale}) at {path}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """P(fake) per frame and per video for loose videos, with a trained dfbench checkpoint."""
    from rich.console import Console

    from dfbench.benchmark.failures import EXIT_FAILED_INPUTS, EXIT_OK
    from dfbench.benchmark.runner import resolve_device
    from dfbench.benchmark.score import failure_lines, render_table, score_videos, write_result

    _set_threads(args.threads)
    if args.out:
        if Path(args.out).suffix.lower() not in (".csv", ".json"):
            raise ConfigError(f"--out {args.out}: the file name must end in .csv or .json.")
        _require_writable(Path(args.out).expanduser().parent, "The --out")
    result = score_videos(args.target, args.checkpoint, frames=args.frames, device=resolve_device(args.device),
                          progress=not args.no_progress)
    print(f"checkpoint: {result.checkpoint}")
    Console(soft_wrap=False).print(render_table(result))
    for line in failure_lines(result):
        print(line)
    if args.out:
        print(f"{Path(args.out).suffix.lstrip('.').lower()}: {write_result(result, args.out)}")
    if result.failed and not args.allow_failures:
        print(f"failed: {len(result.failed)} video(s) got no score (listed above); exit code {EXIT_FAILED_INPUTS}. "
              f"Pass --allow-failures to accept them.", file=sys.stderr)
        return EXIT_FAILED_INPUTS
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "detectors":
        from dfbench.detectors import DETECTORS

        for name in DETECTORS.names():
            meta = DETECTORS.meta(name)
            print(f"{name:24s} {meta.get('paper', ''):14s} {meta.get('description', '')}")
    elif args.what == "protocols":
        from dfbench.benchmark.protocol_index import protocol_headers

        # the files' own headers, not validated here (a run validates the spec it uses): fast
        for name, (version, description) in sorted(protocol_headers().items()):
            print(f"{name:22s} v{version}  {description}")
    else:
        from dfbench.datasets import DATASETS

        for name in DATASETS.names():
            print(f"{name:12s} {DATASETS.meta(name).get('description', '')}")
    return 0


def cmd_check_detector(args: argparse.Namespace) -> int:
    """The common checks of dfbench.testing on one detector (a name or a plug-in spec)."""
    import tempfile

    from dfbench.testing import run_detector_checks

    _set_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="dfbench-check-") as tmp:
        outcomes = run_detector_checks(args.detector, Path(tmp))
    width = max(len(o.check) for o in outcomes)
    for o in outcomes:
        tail = f"  {o.detail}" if o.detail else ""
        print(f"{o.status.upper():6s} {o.check:{width}s} {o.seconds:6.1f} s{tail}", flush=True)
    failed = [o.check for o in outcomes if o.status == "fail"]
    print(f"{args.detector}: {len(outcomes) - len(failed)}/{len(outcomes)} checks passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _eval_roots(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "protocol": args.protocol,
        "preset": args.preset,
        "data_root": Path(args.data_root) if args.data_root else None,
        "dataset_roots": {k: Path(str(v)) for k, v in _parse_assignments(args.dataset_root, "--dataset-root").items()},
        "progress": not args.no_progress,
    }


def cmd_eval(args: argparse.Namespace) -> int:
    from dfbench.benchmark.evaluate import EvalRequest, evaluate

    _set_threads(args.threads)
    request = EvalRequest(
        **_eval_roots(args),
        seed=args.seed,
        device=args.device,
        results_root=Path(args.results) if args.results else None,
        checkpoints=list(args.checkpoint),
        detector=args.detector,
        predictions=Path(args.predictions) if args.predictions else None,
        name=args.name,
        fresh=args.fresh,
    )
    failures = _failure_log()
    try:
        rows = evaluate(request, failures=failures)
    except DfbenchError:
        _print_failures(failures, only_if_any=True)
        raise
    _print_matrices(rows, f"of {rows['detector'].iloc[0]} (not trained here)", request)
    return _finish(failures, args.allow_failures)


def cmd_export_testlist(args: argparse.Namespace) -> int:
    from dfbench.benchmark.evaluate import test_list

    out = Path(args.out)
    _require_writable(out.parent if str(out.parent) else Path("."), "The --out")
    listing = test_list(argparse.Namespace(**_eval_roots(args), quiet=False), log=lambda m: print(m, file=sys.stderr))
    from dfbench.benchmark.results import atomic_write_bytes

    atomic_write_bytes(out, listing.to_csv(index=False).encode("utf-8"))
    n_videos = listing.drop_duplicates(["training", "video_id"]).shape[0]
    print(f"wrote {len(listing)} rows ({n_videos} videos over {listing['test'].nunique()} test sets) to {out}")
    return 0


def _add_eval_commands(sub: Any) -> None:
    """check-detector, eval and export-testlist (issue #16: own detectors, scoring without training)."""

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--protocol", required=True, help="protocol name (dfbench list protocols) or a YAML spec path")
        p.add_argument("--preset", default="mini", choices=["mini", "paper"], help="the protocol's preset (frames per video)")
        p.add_argument("--data-root", help="folder holding the real datasets (default: embedded synthetic benchmark)")
        p.add_argument("--dataset-root", action="append", default=[], metavar="NAME=PATH", help="root of one dataset, repeatable")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("check-detector", help="run dfbench's common detector checks on a detector (name or file.py:Class)")
    p.add_argument("detector", metavar="NAME_OR_SPEC",
                   help="a registered name, path/to/file.py:ClassName, package.module:ClassName or an entry-point name")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: reproducible)")
    p.set_defaults(func=cmd_check_detector)

    p = sub.add_parser("eval", help="score a protocol's test cells from a trained checkpoint or from a predictions CSV")
    data_options(p)
    p.add_argument("--checkpoint", action="append", default=[], metavar="[TRAINING=]PATH",
                   help="a dfbench inference checkpoint (e.g. <run>/models/<training>/model.pt); TRAINING= names the "
                        "protocol's training it stands for (needed when the protocol trains several models), repeatable")
    p.add_argument("--detector", help="with --checkpoint: detector name or plug-in spec (default: the one the checkpoint records)")
    p.add_argument("--predictions", help="CSV of P(fake): video_id,score[,frame][,training] (see dfbench export-testlist)")
    p.add_argument("--name", help="the name the rows are filed under (required with --predictions; "
                                  "default with --checkpoint: <detector>@checkpoint)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap interval (a run uses its training seed)")
    p.add_argument("--device", default="auto", help="with --checkpoint: auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--results", help="results directory (default $DFBENCH_RESULTS or ./results/runs)")
    p.add_argument("--fresh", action="store_true", help="replace an earlier eval filed under the same name")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    _allow_failures_option(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export-testlist", help="write the exact test videos and frame indices a predictions file must score")
    data_options(p)
    p.add_argument("--out", required=True, help="CSV to write: training,test,dataset,video_id,frame,note")
    p.set_defaults(func=cmd_export_testlist)


def _allow_failures_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit 0 even when dataset entries were rejected or videos failed (they are still listed)",
    )


def build_parser() -> argparse.ArgumentParser:
    from dfbench import __version__

    parser = argparse.ArgumentParser(prog="dfbench", description="Benchmark harness for face-forgery detectors.")
    parser.add_argument("--version", action="version", version=f"dfbench {__version__}",
                        help="print dfbench's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do (dfbench COMMAND -h)")

    def common_run(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
        p.add_argument("--seeds", type=int, default=1, help="number of consecutive seeds (mean and spread)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="detector config override, repeatable")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("run", help="train and score one detector on one protocol")
    p.add_argument("--protocol", required=True, help="protocol name (dfbench list protocols) or a YAML spec path")
    p.add_argument("--detector", required=True,
                   help="detector name (dfbench list detectors), or your own: path/to/file.py:ClassName or package.module:ClassName")
    p.add_argument("--backbone", help="any timm model name, e.g. efficientnet_b4")
    p.add_argument("--weights", help="local backbone state dict (.pth with weights_only=True, or .safetensors); wins over --pretrained")
    p.add_argument("--pretrained", action="store_true",
                   help="start from timm's ImageNet weights, read from timm's local cache (HF_HOME; never downloaded); "
                        "paper presets set this where the paper pre-trains (--set pretrained=false to train from scratch)")
    p.add_argument("--preset", default="mini", choices=["mini", "paper"], help="mini: embedded data, CPU minutes; paper: paper settings")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--data-root", help="folder holding the real datasets (default: embedded synthetic benchmark)")
    p.add_argument("--dataset-root", action="append", default=[], metavar="NAME=PATH", help="root of one dataset, repeatable")
    p.add_argument("--results", help="results directory (default $DFBENCH_RESULTS or ./results/runs)")
    p.add_argument("--fresh", action="store_true", help="discard an earlier run of the same cell instead of resuming")
    p.add_argument("--rebuild-cache", action="store_true", help="delete the face-crop cache first")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    _allow_failures_option(p)
    common_run(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="the run matrix: protocols × detectors × seeds into one results store (optionally on Ray)")
    p.add_argument("--protocol", nargs="+", required=True, help="one or more protocols (names or YAML paths)")
    p.add_argument("--detector", nargs="+", required=True, help="one or more detectors")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=1, help="number of consecutive seeds per (protocol, detector)")
    p.add_argument("--preset", default="mini", choices=["mini", "paper"], help="mini: embedded data, CPU minutes; paper: paper settings (every cell)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (each cell; on Ray a GPU cell sees its own GPU as cuda)")
    p.add_argument("--data-root", help="folder holding the real datasets (default: embedded synthetic benchmark)")
    p.add_argument("--dataset-root", action="append", default=[], metavar="NAME=PATH", help="root of one dataset, repeatable")
    p.add_argument("--results", help="results directory (on a shared file system when cells run on several nodes)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="detector config override for every cell, repeatable")
    p.add_argument("--ray", metavar="auto|ADDRESS", help="run cells as Ray tasks: auto = the running cluster or a local one; "
                                                         "ADDRESS = HOST:PORT of `ray start --head` (needs pip install -e '.[ray]')")
    p.add_argument("--cpus-per-cell", type=float, default=1.0, help="Ray CPUs per cell (also its torch threads; default 1)")
    p.add_argument("--gpus-per-cell", type=float, default=0.0, help="Ray GPUs per cell (default 0)")
    p.add_argument("--max-retries", type=int, default=2, help="Ray retries of a cell whose worker died (default 2)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("leaderboard", help="HTML + CSV + Markdown tables from every stored result")
    p.add_argument("--results", help="results directory")
    p.add_argument("--out", help="output folder (default: beside the results directory)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("papers", help="which of the papers' printed numbers dfbench has a cell for")
    p.add_argument("--paper", help="one paper only (two_gen_bat, pbnet, pim, big_arts, qad)")
    p.add_argument("--brief", action="store_true", help="counts only, no reasons")
    p.add_argument("--csv", help="also write every printed number with covered / covered_by / reason")
    p.set_defaults(func=cmd_papers)

    p = sub.add_parser("check", help="regression check of AUCs against the stored reference")
    p.add_argument("--protocol", help="run this protocol first (small mini run)")
    p.add_argument("--detector", default="erm", help="with --protocol: the detector to run (default erm)")
    p.add_argument("--results", help="results directory")
    p.add_argument("--reference", help="reference JSON (default: shipped results/reference/mini.json)")
    p.add_argument("--tolerance", type=float, default=None, help="absolute AUC tolerance (default: the reference file's)")
    p.add_argument("--write", action="store_true", help="store the current results as the new reference")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for the run (default 1: reproducible)")
    common_run(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("preprocess", help="detect faces and fill the crop cache (for a dataset or a protocol's run)")
    p.add_argument("--protocol", help="fill exactly the crops `dfbench run --protocol P` reads (with --detector, --preset)")
    p.add_argument("--detector", default="erm", help="with --protocol: the detector whose input size sets the crop size")
    p.add_argument("--preset", default="mini", choices=["mini", "paper"], help="with --protocol: the run's preset")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="with --protocol: the run's detector overrides")
    p.add_argument("--data-root", help="with --protocol: folder holding the real datasets (default: embedded benchmark)")
    p.add_argument("--dataset-root", action="append", default=[], metavar="NAME=PATH", help="with --protocol: root of one dataset")
    p.add_argument("--dataset", help="without --protocol: dataset name (dfbench list datasets)")
    p.add_argument("--root", help="without --protocol: the dataset's folder")
    p.add_argument("--frames", type=int, help="without --protocol: frames per video, evenly spaced (default 32)")
    p.add_argument("--size", type=int, help="without --protocol: crop size in pixels (default 299)")
    p.add_argument("--detect-size", type=int, help="without --protocol: MTCNN skips pyramid levels finer than a copy of this shorter side (default 360; 0 = full resolution)")
    p.add_argument("--device", default="auto", help="face detection on auto | cpu | cuda | cuda:N")
    p.add_argument("--workers", type=int, default=0, help="processes for decoding + detection (0 or 1: this process)")
    p.add_argument("--cache", help="cache directory (default $DFBENCH_CACHE, the one `dfbench run` reads)")
    p.add_argument("--ray", metavar="auto|ADDRESS", help="one Ray task per reference-video group; the cache must be on a "
                                                         "file system every node shares (needs pip install -e '.[ray]')")
    p.add_argument("--gpus-per-task", type=float, default=None, help="with --ray: GPUs per task (default 1 with --device cuda, else 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _allow_failures_option(p)
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("datasets", help="dataset tools")
    dsub = p.add_subparsers(dest="datasets_command", required=True, metavar="ACTION", help="check")
    q = dsub.add_parser("check", help="validate a dataset layout and print counts")
    q.add_argument("root", help="the dataset's folder (its official layout)")
    q.add_argument("--dataset", help="dataset name (default: recognised from the layout of ROOT)")
    q.set_defaults(func=cmd_datasets_check)

    p = sub.add_parser("data", help="the embedded synthetic benchmark")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION", help="synth")
    q = dsub.add_parser("synth", help="generate the embedded synthetic benchmark")
    q.add_argument("--out", help="output folder (default: $DFBENCH_DATA/<scale>, created once)")
    q.add_argument("--scale", default="mini", help="size of the set: tiny, mini (default; what runs use), small or full")
    q.add_argument("--seed", type=int, default=0, help="with --out: the generator's seed (the embedded set uses 0)")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_synth)

    p = sub.add_parser("score", help="P(fake) per frame and per video of a video or a folder, with a trained checkpoint")
    p.add_argument("target", metavar="VIDEO|DIR", help="a video file, or a folder whose videos (recursively) are scored")
    p.add_argument("--checkpoint", required=True,
                   help="a trained model: models/<training>/model.pt in a run folder (dfbench's Detector.save format)")
    p.add_argument("--out", help="also write the scores: .csv (one row per video and per frame) or .json")
    p.add_argument("--frames", type=int, default=32, help="frames per video, evenly spaced as in preprocessing (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (face detection: CUDA or CPU)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--allow-failures", action="store_true",
                   help="exit 0 even when a video has no face or cannot be decoded (it is still listed)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("list", help="list registered detectors, protocols or datasets")
    p.add_argument("what", choices=["detectors", "protocols", "datasets"], help="detectors, protocols or datasets")
    p.set_defaults(func=cmd_list)
    _add_eval_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from dfbench.benchmark.logs import console_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    console_logging()
    try:
        return int(args.func(args) or 0)
    except DfbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a write outside the atomic helper hit a full or read-only disk
        line = _write_failure(exc)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
