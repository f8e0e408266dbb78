"""timm backbones by name, with a two-class head, offline by default.

``pretrained=False`` is the default (no network at run time). ``pretrained=True`` asks timm
for its hub weights (needs network); ``weights=PATH`` loads a local checkpoint with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from dfbench.benchmark.errors import ConfigError


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
    obj = load_tensor_file(path, "Weights file")
    for key in ("state_dict", "model", "state"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"Weights file {path} does not hold a state dict of tensors.")
    return obj


def create_backbone(
    name: str,
    *,
    num_classes: int = 2,
    pretrained: bool = False,
    weights: str | Path | None = None,
    **kwargs,
) -> nn.Module:
    """``timm.create_model`` with a clear error for unknown names and local weights support."""
    if not timm.is_model(name):
        raise ConfigError(f"Unknown backbone {name!r}: use a timm model name (see `timm.list_models()`).")
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    except Exception as exc:
        if pretrained:
            raise ConfigError(
                f"Could not fetch pretrained weights for {name!r} ({exc}); without network, pass a local "
                f"checkpoint with --weights PATH or leave pretrained off."
            ) from exc
        raise
    if weights is not None:
        state = load_state_dict_file(weights)
        # a classifier head of another size (ImageNet) is dropped, the rest must fit
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
    return model


def feature_dim(model: nn.Module) -> int:
    """Width of the pre-logits feature a timm model produces."""
    return int(model.num_features)
