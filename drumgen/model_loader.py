"""Loading the trained model and its tokenizer once per process (cached), on CUDA when present."""

from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from drumgen.constants import RETRAIN_HINT
from drumgen.model import DrumPatternTransformer, ModelConfig
from drumgen.styles import get_model_path, get_style
from drumgen.tokenizer import TOKENIZER_FILENAME, DrumTokenizer

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not fit the model or tokenizer."""


def pick_device(device: str | None = None) -> torch.device:
    """``device`` when given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def checkpoint_path(model_path: str | Path) -> Path:
    """``model_path`` when it names a file, else the checkpoint of the style it names ("J Dilla",
    ``"j_dilla_v1"``), else the path as given (so a missing file is reported as such)."""
    path = Path(model_path)
    if path.is_file() or not isinstance(model_path, str):
        return path
    try:
        get_style(model_path)
    except ValueError:
        return path
    return get_model_path(model_path)


@functools.lru_cache(maxsize=4)
def load_model(model_path: str | Path, device: str | None = None) -> tuple[DrumPatternTransformer, dict[str, Any]]:
    """Load a checkpoint (a path, or a style name whose checkpoint to load) as ``(model, metadata)``,
    in eval mode, cached per (argument, device).

    CUDA is used when available (``device=None``); a CUDA out-of-memory error falls back
    to the CPU with a warning. A missing file raises ``FileNotFoundError`` naming the
    path and the command that trains one; an unreadable or mismatched file raises
    :class:`CheckpointError`.
    """
    return _load_checkpoint(checkpoint_path(model_path), device)


@functools.lru_cache(maxsize=4)
def _load_checkpoint(path: Path, device: str | None) -> tuple[DrumPatternTransformer, dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"model checkpoint not found: {path}; {RETRAIN_HINT} --out {path.parent}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(f"model checkpoint {path} is corrupt or not a drumgen checkpoint "
                              f"({type(exc).__name__}); retrain it ({RETRAIN_HINT})") from None
    if not isinstance(ckpt, dict) or "model_args" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"model checkpoint {path} lacks model_args/model: not a drumgen checkpoint")
    try:
        # checkpoints made before these keys existed used exact GELU and had no timing head
        config = ModelConfig(**{"gelu": "none", "timing_head": False, **ckpt["model_args"]})
        model = DrumPatternTransformer(config)
        model.load_state_dict(ckpt["model"])
    except (TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"model checkpoint {path} does not match the model code: "
                              f"{str(exc).splitlines()[0]}") from None
    model.eval()
    target = pick_device(device)
    if target.type == "cuda":
        try:
            model.to(target)
        except torch.cuda.OutOfMemoryError:
            warnings.warn("CUDA out of memory while loading the model; using the CPU", RuntimeWarning,
                          stacklevel=2)
            log.warning("CUDA out of memory while loading the model; falling back to CPU")
            torch.cuda.empty_cache()
            model.to("cpu")
    metadata = dict(ckpt.get("metadata") or {})
    metadata.setdefault("model_args", ckpt["model_args"])
    log.info("loaded %s (%.2f M parameters) on %s", path, model.num_parameters() / 1e6,
             next(model.parameters()).device)
    return model, metadata


@functools.lru_cache(maxsize=4)
def load_tokenizer(model_path: str | Path) -> DrumTokenizer:
    """The tokenizer saved beside a checkpoint (``tokenizer.json`` in its folder; a style name is
    resolved as by :func:`load_model`), cached."""
    path = checkpoint_path(model_path)
    config = path.parent / TOKENIZER_FILENAME if path.suffix else path / TOKENIZER_FILENAME
    if not config.is_file():
        raise FileNotFoundError(f"tokenizer config not found beside the checkpoint: {config}; {RETRAIN_HINT}")
    try:
        return DrumTokenizer.load(config)
    except (ValueError, FileNotFoundError) as exc:
        raise CheckpointError(str(exc)) from None


def load_bundle(model_path: str | Path, device: str | None = None
                ) -> tuple[DrumPatternTransformer, DrumTokenizer, dict[str, Any]]:
    """Model, tokenizer and metadata of a checkpoint, checked against each other."""
    model, metadata = load_model(str(model_path), device)
    tokenizer = load_tokenizer(str(model_path))
    if model.config.vocab_size != len(tokenizer):
        raise CheckpointError(f"checkpoint {model_path} has a vocabulary of {model.config.vocab_size} tokens "
                              f"but its tokenizer has {len(tokenizer)}; retrain ({RETRAIN_HINT})")
    return model, tokenizer, metadata
