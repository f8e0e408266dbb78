"""timm backbones by name, with a two-class head, never downloading anything.

Three ways to initialise a backbone:

* ``pretrained=False, weights=None``: random initialisation (the ``mini`` presets);
* ``weights=PATH``: a local state dict (``.pth``/``.pt``/``.bin`` read with
  ``torch.load(weights_only=True)``, or ``.safetensors``); a classifier of another size is
  dropped, every other tensor must fit;
* ``pretrained=True``: timm's ImageNet weights for the backbone, read from timm's local
  caches only (the Hugging Face hub cache under ``HF_HOME``, or torch hub's
  ``checkpoints/`` folder for weights timm fetches by URL). When they are absent this is a
  ``ConfigError`` that says how to supply them, never a silent random initialisation.

``weights`` wins over ``pretrained``. ``init_provenance`` tells a run which file initialised
its backbone and that file's sha256 (result rows record both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.plugins import file_sha256  # one helper for weights, plug-ins, checkpoints

# the file names timm publishes on the Hugging Face hub, in the order timm tries them
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def load_tensor_file(path: Path, what: str) -> object:
    """``torch.load(weights_only=True)`` with one clear sentence when the file is refused.

    Torch's own message for a refused file advises retrying with ``weights_only=False``, which
    would execute whatever the file's pickle holds: that advice is never passed on.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, refused globals
        text = str(exc)
        if "weights_only" in text or "Weights only load failed" in text:
            why = "it holds Python objects other than tensors, which dfbench never unpickles"
        else:
            why = (text.strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{what} {path} cannot be read as a tensor checkpoint: {why}.") from exc


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a local checkpoint, never unpickling arbitrary objects."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"Weights file {path} does not exist.")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # truncated or foreign files
            raise ConfigError(f"Weights file {path} cannot be read as a safetensors file: {exc}") from exc
    else:
        obj = load_tensor_file(path, "Weights file")
    for key in ("state_dict", "model", "state"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"Weights file {path} does not hold a state dict of tensors.")
    return obj


def _hf_hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_pretrained_file(name: str) -> Path | None:
    """The local file holding timm's pretrained weights for ``name``, or None if not cached.

    Looks where timm itself would read them: the Hugging Face hub cache for weights hosted
    there, torch hub's ``checkpoints/`` folder for weights timm fetches by URL."""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_WEIGHT_FILES
        for filename in files:
            found = try_to_load_from_cache(repo, filename, cache_dir=_hf_hub_cache(), revision=revision or None)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    if cfg.url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url.split("?")[0]).name
        if candidate.is_file():
            return candidate
    return None


def missing_weights_message(name: str) -> str:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        where = "timm publishes no pretrained weights for it"
    elif cfg.hf_hub_id:
        where = f"timm's cache holds none for it (looked for {cfg.hf_hub_id} under {_hf_hub_cache()})"
    else:
        where = f"timm's cache holds none for it (looked in {Path(torch.hub.get_dir()) / 'checkpoints'})"
    return (
        f"Backbone {name!r} is set to start from ImageNet weights (pretrained=True) and {where}; "
        f"dfbench never downloads weights and never falls back to a random initialisation. "
        f"Pass --weights PATH (a timm state dict for {name}, .pth or .safetensors) or put the weights in "
        f"timm's cache (HF_HOME), e.g. run `python -c \"import timm; timm.create_model('{name}', pretrained=True)\"` "
        f"once on a machine with network and copy the cache; or --set pretrained=false to train from scratch."
    )


def pretrained_file(name: str) -> Path:
    """``cached_pretrained_file`` or a ConfigError that says how to supply the weights."""
    found = cached_pretrained_file(name)
    if found is None:
        raise ConfigError(missing_weights_message(name))
    return found


def init_provenance(name: str, *, pretrained: bool, weights: str | Path | None) -> dict[str, Any]:
    """Which file initialises the backbone: ``{"pretrained", "weights_file", "weights_sha256"}``.

    ``pretrained`` is True when the backbone starts from a weight file (``weights`` or timm's
    cached ImageNet weights). Raises ConfigError, before any data work, when the file is absent."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"Weights file {path} does not exist (--weights / weights=).")
    elif pretrained:
        if not timm.is_model(name):
            raise ConfigError(f"Unknown backbone {name!r}: use a timm model name (see `timm.list_models()`).")
        path = pretrained_file(name)
    else:
        return {"pretrained": False, "weights_file": None, "weights_sha256": None}
    return {"pretrained": True, "weights_file": str(path), "weights_sha256": file_sha256(path)}


def create_backbone(
    name: str,
    *,
    num_classes: int = 2,
    pretrained: bool = False,
    weights: str | Path | None = None,
    **kwargs,
) -> nn.Module:
    """``timm.create_model`` with a clear error for unknown names, offline pretrained weights
    and local weights files (see the module docstring)."""
    if not timm.is_model(name):
        raise ConfigError(f"Unknown backbone {name!r}: use a timm model name (see `timm.list_models()`).")
    if weights is None and pretrained:
        # timm applies its own checkpoint filter and drops the ImageNet classifier; the
        # tensors come from our safe loader, so timm never touches the network
        state = load_state_dict_file(pretrained_file(name))
        try:
            model = timm.create_model(
                name, pretrained=True, pretrained_cfg_overlay={"state_dict": state}, num_classes=num_classes, **kwargs
            )
        except RuntimeError as exc:
            raise ConfigError(f"timm's cached weights for {name!r} do not fit the model ({exc}).") from exc
        for module in model.modules():  # timm keeps the overlay in pretrained_cfg: drop the tensors
            cfg = module.__dict__.get("pretrained_cfg")
            if isinstance(cfg, dict):
                cfg.pop("state_dict", None)
        return model
    model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    if weights is not None:
        load_weights(model, name, weights)
    return model


def load_weights(model: nn.Module, name: str, weights: str | Path) -> None:
    """Load a local state dict into ``model``; a classifier of another size is dropped."""
    state = load_state_dict_file(weights)
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_ids = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    head_keys = {n for n, p in model.named_parameters() if id(p) in head_ids}
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not (k in head_keys and own.get(k, v).shape != v.shape)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in head_keys]
    if missing or unexpected:
        raise ConfigError(
            f"Weights file {weights} does not fit backbone {name!r}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})."
        )


def feature_dim(model: nn.Module) -> int:
    """Width of the pre-logits feature a timm model produces."""
    return int(model.num_features)
