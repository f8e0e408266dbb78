"""One training on several processes: PyTorch distributed data parallel, launched by torchrun.

``torchrun --nproc_per_node N -m dfbench run --protocol P --detector D`` starts N copies of
the ordinary run. Each reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT) and joins one process group: ``gloo`` on CPU, ``nccl`` on CUDA
(``DFBENCH_DIST_BACKEND`` overrides). Without those variables (or with WORLD_SIZE=1) every
function here is a no-op and a run is the single-process run, bit for bit.

What a rank does (see docs/scale.md):

- **Data.** Every rank walks the *same* global batch order (the single-process order, which
  depends only on (seed, epoch)) and takes its contiguous share of each global batch
  (``np.array_split(batch, world)[rank]``). The global batch of step k is therefore the
  single-process batch of step k, so ``batch_size`` keeps its meaning (the global batch, as
  in the papers) and an interrupted run resumes at an epoch boundary with the same batches.
- **Gradients.** Averaged explicitly, weighted by each rank's share of the global batch
  (n_r / N, so a mean-reduced loss gets the global-batch mean gradient exactly), in a
  pre-step hook on *every* optimiser of the fit (the model's and a recipe's generators).
  We do not wrap the model in ``DistributedDataParallel``: DDP reduces inside ``backward``
  and expects one forward/backward per step through the wrapper, while the recipes run
  several forwards per step (adversarial examples, a generator's ascent, AWP, SAM),
  take ``torch.autograd.grad`` for input/weight perturbations, and call the backbone's
  ``forward_features`` directly — all of which would bypass or confuse DDP's reducer.
  Reducing at ``optimizer.step`` is correct for any number of forwards and backwards.
  Gradients that a recipe uses *before* a step (AWP's ascent direction, SAM's ε, PIM's
  statistics direction) are averaged where they are taken, with ``average_gradients``.
- **Buffers.** BatchNorm running statistics are averaged over ranks after each step (the
  running mean then equals the single-process one; each rank still normalises with its
  own slice's batch statistics, which is the one difference from one process).
- **Agreement.** Parameters are broadcast from rank 0 when a fit starts; the validation AUC
  that picks the best epoch is rank 0's, broadcast, so every rank keeps the same state.
- **Writes.** Only rank 0 writes into the results store. Every other rank runs the same
  procedure (so control flow and collectives match) against a private scratch copy of the
  run directory, mirrored from rank 0's before the run starts (so a resumed run resumes
  identically on every rank) and deleted at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from dfbench.benchmark.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def device(self) -> torch.device:
        """Where collective tensors live: the rank's GPU under nccl, else the CPU."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


_CTX: DistContext | None = None
_SCRATCH: Path | None = None
# this step's share of the global batch (n_r / N), set when the rank's batch is taken
_WEIGHT = 1.0


def init_from_env() -> DistContext | None:
    """Join torchrun's process group once per process (None when not launched by torchrun)."""
    global _CTX
    if _CTX is not None:
        return _CTX
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise ConfigError(f"WORLD_SIZE={world} but {', '.join(missing)} not set; launch with torchrun --nproc_per_node N -m dfbench run ...")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = os.environ.get("DFBENCH_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        atexit.register(shutdown)
    _CTX = DistContext(rank=rank, world=world, local_rank=local_rank, backend=backend)
    return _CTX


def shutdown() -> None:
    """Leave the process group and delete this rank's scratch results (idempotent)."""
    global _CTX, _SCRATCH
    if _SCRATCH is not None:
        shutil.rmtree(_SCRATCH, ignore_errors=True)
        _SCRATCH = None
    if _CTX is not None and dist.is_initialized():
        dist.destroy_process_group()
    _CTX = None


def active() -> DistContext | None:
    return _CTX


def is_main() -> bool:
    return _CTX is None or _CTX.rank == 0


def barrier() -> None:
    if _CTX is not None:
        dist.barrier()


@contextlib.contextmanager
def rank_zero_first() -> Iterator[None]:
    """Rank 0 runs the block (generating the embedded data, clearing the cache) before the others."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def rank_device(device: str) -> str:
    """``cuda`` → this rank's GPU (``cuda:LOCAL_RANK``) under torchrun; anything else unchanged."""
    if _CTX is not None and device == "cuda":
        return f"cuda:{_CTX.local_rank}"
    if _CTX is not None and device.startswith("cuda:"):
        raise ConfigError(f"--device {device} under torchrun would put every rank on one GPU; use --device cuda "
                          f"(rank k trains on cuda:LOCAL_RANK) and CUDA_VISIBLE_DEVICES to choose the GPUs.")
    return device


# --------------------------------------------------------------------------- results
def results_root(root: Path) -> Path:
    """The results root this rank writes: the real one on rank 0, a private scratch folder elsewhere."""
    global _SCRATCH
    if is_main():
        return Path(root)
    if _SCRATCH is None:
        # one name per (job port, results root, rank): a killed run's leftover (no atexit on
        # SIGKILL/SIGTERM) is reused and removed by the run that resumes it
        tag = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]
        _SCRATCH = Path(tempfile.gettempdir()) / f"dfbench-rank{_CTX.rank}-{os.environ.get('MASTER_PORT', '0')}-{tag}"
        _SCRATCH.mkdir(parents=True, exist_ok=True)
    return _SCRATCH


def mirror_run_dir(main_run_dir: Path, local_run_dir: Path) -> None:
    """Before a seed runs: every rank starts from rank 0's run directory (finished cells,
    training checkpoint), so a resumed DDP run takes the same path on every rank."""
    if _CTX is None:
        return
    barrier()
    if not is_main():
        shutil.rmtree(local_run_dir, ignore_errors=True)
        if Path(main_run_dir).is_dir():
            shutil.copytree(main_run_dir, local_run_dir)
    barrier()  # nobody writes before every copy is taken


# --------------------------------------------------------------------------- collectives
def average_gradients(grads: Iterable[torch.Tensor | None], refs: Iterable[torch.Tensor]) -> list[torch.Tensor | None]:
    """Gradients a recipe took with ``torch.autograd.grad`` (``refs``: the tensors they are
    gradients of), averaged over ranks with this step's batch shares. Identity in one process."""
    grads = list(grads)
    if _CTX is None:
        return grads
    return _weighted_sum(grads, list(refs), _WEIGHT)


def _weighted_sum(grads: list[torch.Tensor | None], refs: list[torch.Tensor], weight: float) -> list[torch.Tensor | None]:
    if not refs:
        return grads
    device = _CTX.device
    sizes = [r.numel() for r in refs]
    flat = torch.zeros(sum(sizes) + len(refs), dtype=torch.float32, device=device)
    offset = 0
    for k, g in enumerate(grads):
        if g is not None:
            flat[offset : offset + sizes[k]] = g.detach().reshape(-1).float().to(device) * weight
            flat[sum(sizes) + k] = 1.0  # this rank had a gradient for it
        offset += sizes[k]
    dist.all_reduce(flat)
    out: list[torch.Tensor | None] = []
    offset = 0
    for k, r in enumerate(refs):
        if flat[sum(sizes) + k] > 0:
            out.append(flat[offset : offset + sizes[k]].view(r.shape).to(device=r.device, dtype=r.dtype))
        else:
            out.append(None)
        offset += sizes[k]
    return out


def _reduce_optimizer_grads(optimizer: torch.optim.Optimizer, *_: Any) -> None:
    """Pre-step hook: every parameter's ``.grad`` becomes the global-batch gradient."""
    if getattr(optimizer, "_dfbench_reduced", False):
        optimizer._dfbench_reduced = False  # averaged already (the fp16 path); once per step
        return
    params = [p for group in optimizer.param_groups for p in group["params"]]
    summed = _weighted_sum([p.grad for p in params], params, _WEIGHT)
    for p, g in zip(params, summed):
        p.grad = g


def reduce_before_scaler(optimizer: torch.optim.Optimizer) -> None:
    """Under fp16 the GradScaler decides from the gradients whether to skip a step: reduce
    them first so every rank decides alike (the pre-step hook then leaves them)."""
    if _CTX is None:
        return
    _reduce_optimizer_grads(optimizer)
    optimizer._dfbench_reduced = True


def broadcast_modules(modules: Iterable[torch.nn.Module]) -> None:
    """Rank 0's parameters and buffers everywhere (as DDP does when it wraps a model)."""
    if _CTX is None:
        return
    with torch.no_grad():
        for module in modules:
            for t in [*module.parameters(), *module.buffers()]:
                buf = t.detach().to(_CTX.device)
                dist.broadcast(buf, src=0)
                t.copy_(buf.to(t.device))


def average_buffers(modules: Iterable[torch.nn.Module]) -> None:
    """Floating-point buffers (BatchNorm running statistics) averaged over ranks; integer
    ones (num_batches_tracked) are equal on every rank already."""
    if _CTX is None:
        return
    bufs = [b for m in modules for b in m.buffers() if b.is_floating_point()]
    if not bufs:
        return
    flat = torch.cat([b.detach().reshape(-1).float().to(_CTX.device) for b in bufs])
    dist.all_reduce(flat)
    flat /= _CTX.world
    offset = 0
    with torch.no_grad():
        for b in bufs:
            b.copy_(flat[offset : offset + b.numel()].view(b.shape).to(b.device, b.dtype))
            offset += b.numel()


def agree(value: float) -> float:
    """Rank 0's value on every rank (the validation AUC that picks the best epoch)."""
    if _CTX is None:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_CTX.device)
    dist.broadcast(t, src=0)
    return float(t.item())


# --------------------------------------------------------------------------- the training loop's hooks
@contextlib.contextmanager
def training(detector: Any) -> Iterator[None]:
    """Around ``Detector.fit``'s epochs: broadcast rank 0's weights, reduce gradients at every
    optimiser step. A no-op in one process."""
    if _CTX is None:
        yield
        return
    if detector.config.batch_size < _CTX.world:
        raise ConfigError(
            f"batch_size={detector.config.batch_size} is the global batch: it must be at least the number of processes ({_CTX.world})."
        )
    modules = [detector.model, *detector.train_modules.values()]
    broadcast_modules(modules)
    handles = [opt.register_step_pre_hook(_reduce_optimizer_grads) for opt in detector.optimizers.values()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def epoch(detector: Any, loader: Iterable[Any], step: Callable[[Any], Mapping[str, Any]]) -> tuple[Iterable[Any], Callable[[Any], Mapping[str, Any]]]:
    """This rank's batches of the epoch and a step that keeps BatchNorm statistics in agreement."""
    if _CTX is None:
        return loader, step
    sampler = getattr(loader, "sampler", None)
    from dfbench.benchmark.frames import SeededBatches

    if isinstance(sampler, SeededBatches):
        # the sampler cuts the rank's share itself: this rank reads only its own frames
        sampler.rank, sampler.world = _CTX.rank, _CTX.world
        batches: Iterable[Any] = _weighted(loader)
    else:
        batches = _weighted(_rank_slices(loader))
    modules = [detector.model, *detector.train_modules.values()]

    def distributed_step(batch: Any) -> Mapping[str, Any]:
        logs = step(batch)
        average_buffers(modules)
        return logs

    return batches, distributed_step


def _batch_len(batch: Any) -> int:
    if isinstance(batch, Mapping):
        first = batch.get("label")
        if first is None:
            first = next(v for v in batch.values() if isinstance(v, torch.Tensor))
        return len(first)
    return len(batch[0] if isinstance(batch, (list, tuple)) else batch)


def _rank_slices(loader: Iterable[Any]) -> Iterator[Any]:
    """A recipe's own loader (QAD's aligned qualities, BiG-Arts' balanced batches): every rank
    fetches the global batch and keeps its contiguous share of every per-frame tensor."""
    for batch in loader:
        n = _batch_len(batch)
        part = np.array_split(np.arange(n), _CTX.world)[_CTX.rank]
        lo, hi = (int(part[0]), int(part[-1]) + 1) if len(part) else (0, 0)
        cut = functools.partial(_cut, n=n, lo=lo, hi=hi)
        if isinstance(batch, Mapping):
            yield {k: cut(v) for k, v in batch.items()}
        elif isinstance(batch, (list, tuple)):
            yield type(batch)(cut(v) for v in batch)
        else:
            yield cut(batch)


def _cut(v: Any, *, n: int, lo: int, hi: int) -> Any:
    """Rows lo:hi of a per-frame value (length n); anything else as it is."""
    if isinstance(v, (torch.Tensor, np.ndarray, list)) and len(v) == n:
        return v[lo:hi]
    return v


def _weighted(batches: Iterable[Any]) -> Iterator[Any]:
    """Record each step's share n_r / N of the global batch (one scalar all-reduce)."""
    global _WEIGHT
    for batch in batches:
        n = torch.tensor([float(_batch_len(batch))], dtype=torch.float64, device=_CTX.device)
        total = n.clone()
        dist.all_reduce(total)
        _WEIGHT = float(n.item() / total.item())
        yield batch
