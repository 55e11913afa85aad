"""Training on the Groove MIDI Dataset: random N-bar windows, AdamW, warm-up + cosine decay.

The train split is learned; the validation split picks the best epoch. The best
checkpoint, its tokenizer config and metadata land in ``out_dir``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from drumgen import __version__
from drumgen.model import DrumPatternTransformer, ModelConfig
from drumgen.resources import CHECKPOINT_NAME
from drumgen.tokenizer import DrumTokenizer
from drumgen.tools.data import TokenizedFile, Window, WindowSampler, contiguous_windows, tokenize_split

log = logging.getLogger(__name__)

METADATA_NAME = "metadata.json"
VALIDATION_BARS = 8  # validation windows: consecutive 8-bar pieces of every file
MAX_OFFSET_16THS = 0.5  # played offsets beyond half a 16th from the step are clipped


@dataclass
class TrainConfig:
    """Defaults are the shipped run (40 epochs; 45 minutes to two hours on a 2-core CPU, by its load)."""

    epochs: int = 40  # the validation loss flattens after about 40 epochs of this schedule
    windows_per_epoch: int = 1600
    batch_size: int = 16
    lr: float = 1.5e-3
    min_lr: float = 1e-4
    warmup_steps: int = 150
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1234
    max_minutes: float = 150.0  # a run past this logs a warning (it still stops by epochs, so any machine
    # gives the same checkpoint)
    timing_weight: float = 1.0  # weight of the timing head's loss beside the token loss
    n_layer: int = 3  # 3 layers (not 4) keep a 4-bar pattern under 100 ms on a 2-core CPU
    n_head: int = 4
    n_embd: int = 192
    block_size: int = 1024
    dropout: float = 0.1
    threads: int = 0  # 0 = torch's default


def loss_mask(batch: torch.Tensor, tok: DrumTokenizer) -> torch.Tensor:
    """Targets that count: not padding, and not conditioning tokens (the model is given those)."""
    cond = [*tok.ids.genre.values(), *tok.ids.tempo, *tok.ids.bar_kind.values(), tok.ids.pad, tok.ids.bos]
    return ~torch.isin(batch, torch.tensor(cond, device=batch.device))


def collate(windows: list[Window], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad windows into (B, T) token ids and (B, T) hit offsets (NaN where there is no hit)."""
    width = max(len(w.ids) for w in windows)
    ids = torch.tensor([w.ids + [pad] * (width - len(w.ids)) for w in windows], dtype=torch.long)
    offsets = torch.tensor([w.offsets + [math.nan] * (width - len(w.offsets)) for w in windows])
    return ids, offsets


def timing_nll(timing: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed Gaussian negative log-likelihood (nats, without the constant) of the played ``offsets``
    (in 16ths; NaN = no hit) under the timing head's (mean, log std) ``timing``, and the hits counted."""
    hit = ~torch.isnan(offsets)
    mean, log_std = timing[..., 0][hit], timing[..., 1][hit]
    target = offsets[hit].clamp(-MAX_OFFSET_16THS, MAX_OFFSET_16THS)
    nll = 0.5 * ((target - mean) / log_std.exp()) ** 2 + log_std
    return nll.sum(), int(hit.sum())


def sequence_nll(model: DrumPatternTransformer, tok: DrumTokenizer, windows: list[Window],
                 batch_size: int = 16) -> tuple[float, int]:
    """Mean per-token negative log-likelihood (nats) of ``windows``, and the tokens counted."""
    return evaluate_windows(model, tok, windows, batch_size)[:2]


def evaluate_windows(model: DrumPatternTransformer, tok: DrumTokenizer, windows: list[Window],
                     batch_size: int = 16) -> tuple[float, int, float | None]:
    """Per-token NLL, tokens counted, and the timing head's mean NLL per hit (None without a head)."""
    model.eval()
    total, count, timing_total, hits = 0.0, 0, 0.0, 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            ids, offsets = collate(windows[i:i + batch_size], tok.ids.pad)
            ids, offsets = ids.to(device), offsets.to(device)
            logits, timing = model(ids[:, :-1], with_timing=True)
            targets = ids[:, 1:]
            mask = loss_mask(targets, tok)
            nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            total += float(nll[mask].sum())
            count += int(mask.sum())
            if timing is not None:
                t_sum, t_hits = timing_nll(timing, offsets[:, :-1])  # the head reads the hit it was fed
                timing_total += float(t_sum)
                hits += t_hits
    return total / max(count, 1), count, (timing_total / hits if hits else None)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def train(data_dir: str | Path, out_dir: str | Path, cfg: TrainConfig | None = None,
          train_files: list[TokenizedFile] | None = None, val_files: list[TokenizedFile] | None = None,
          device: str | None = None) -> dict:
    """Train a model and write the best checkpoint to ``out_dir``; return its metadata."""
    cfg = cfg or TrainConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = DrumTokenizer()
    if train_files is None:
        train_files = tokenize_split(data_dir, "train", tok)
    if val_files is None:
        val_files = tokenize_split(data_dir, "validation", tok)
    if not train_files:
        raise ValueError(f"no training files found in {data_dir}")
    model_cfg = ModelConfig(vocab_size=len(tok), block_size=cfg.block_size, n_layer=cfg.n_layer,
                            n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout)
    model = DrumPatternTransformer(model_cfg).to(device)
    log.info("model: %.2f M parameters, %d train files, %d validation files",
             model.num_parameters() / 1e6, len(train_files), len(val_files))
    timing_params = [p for n, p in model.named_parameters() if n.startswith("timing.")]
    token_params = [p for n, p in model.named_parameters() if not n.startswith("timing.")]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    sampler = WindowSampler(train_files, tok, cfg.block_size, seed=cfg.seed)
    val_windows = contiguous_windows(val_files or train_files[:8], tok, VALIDATION_BARS, cfg.block_size)
    steps_per_epoch = max(1, cfg.windows_per_epoch // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    best = {"val_loss": float("inf"), "epoch": -1}
    history: list[dict] = []
    start = time.time()
    step = 0
    warned = False
    for epoch in range(cfg.epochs):
        model.train()
        epoch_loss, epoch_tokens = 0.0, 0
        for _ in range(steps_per_epoch):
            ids, offsets = collate(sampler.batch(cfg.batch_size), tok.ids.pad)
            ids, offsets = ids.to(device), offsets.to(device)
            targets = ids[:, 1:]
            mask = loss_mask(targets, tok)
            logits, timing = model(ids[:, :-1], with_timing=True)  # (B, T, V), (B, T, 2)
            nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            loss = token_loss = nll[mask].mean()
            if timing is not None:  # the head at each position reads the hit it was fed
                t_sum, t_hits = timing_nll(timing, offsets[:, :-1])
                loss = loss + cfg.timing_weight * t_sum / max(t_hits, 1)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total_steps, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # clipped apart: the timing head's gradients must not shrink the token model's
            torch.nn.utils.clip_grad_norm_(token_params, cfg.grad_clip)
            if timing_params:
                torch.nn.utils.clip_grad_norm_(timing_params, cfg.grad_clip)
            opt.step()
            step += 1
            epoch_loss += token_loss.item() * int(mask.sum())
            epoch_tokens += int(mask.sum())
            if step % 25 == 0:
                elapsed = time.time() - start
                eta = elapsed / step * (total_steps - step)
                log.info("epoch %d step %d/%d loss %.3f lr %.2e  %.0f tok/s  elapsed %s  ETA %s",
                         epoch + 1, step, total_steps, loss.item(), lr_at(step, total_steps, cfg),
                         epoch_tokens / max(1e-9, elapsed - sum(h["seconds"] for h in history)),
                         _hms(elapsed), _hms(eta))
        val_loss, _, val_timing = evaluate_windows(model, tok, val_windows)
        elapsed = time.time() - start
        record = {"epoch": epoch + 1, "train_loss": epoch_loss / max(1, epoch_tokens), "val_loss": val_loss,
                  "val_timing_nll": val_timing, "seconds": elapsed - sum(h["seconds"] for h in history)}
        history.append(record)
        log.info("epoch %d: train %.4f  validation %.4f  timing %s  (%s)", epoch + 1, record["train_loss"],
                 val_loss, "-" if val_timing is None else f"{val_timing:.4f}", _hms(elapsed))
        if val_loss < best["val_loss"]:  # the tokens pick the epoch: they are the music
            best = {"val_loss": val_loss, "epoch": epoch + 1, "val_timing_nll": val_timing}
            _save(model, tok, out_dir, cfg, best, history, train_files, val_files, data_dir)
        if elapsed / 60 > cfg.max_minutes and not warned:
            log.warning("past %.0f minutes after epoch %d: this machine is slower than the one the defaults "
                        "were set on; the run goes on to epoch %d", cfg.max_minutes, epoch + 1, cfg.epochs)
            warned = True
    meta = json.loads((out_dir / METADATA_NAME).read_text())
    meta["history"] = history
    meta["train_minutes"] = round((time.time() - start) / 60, 1)
    (out_dir / METADATA_NAME).write_text(json.dumps(meta, indent=2))
    ckpt = torch.load(out_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    ckpt["metadata"] = meta
    torch.save(ckpt, out_dir / CHECKPOINT_NAME)
    return meta


def _save(model: DrumPatternTransformer, tok: DrumTokenizer, out_dir: Path, cfg: TrainConfig, best: dict,
          history: list[dict], train_files: list[TokenizedFile], val_files: list[TokenizedFile],
          data_dir: str | Path) -> None:
    meta = {
        "version": __version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vocab_size": len(tok),
        "block_size": model.config.block_size,
        "model_args": asdict(model.config),
        "parameters": model.num_parameters(),
        "train_config": asdict(cfg),
        "data": {"dataset": "Groove MIDI Dataset v1.0.0 (CC BY 4.0)", "path": str(data_dir),
                 "train_split": "train", "train_files": len(train_files),
                 "train_bars": sum(len(f.bars) for f in train_files),
                 "selection_split": "validation", "validation_files": len(val_files)},
        "val_loss": best["val_loss"],
        "val_timing_nll": best.get("val_timing_nll"),
        "best_epoch": best["epoch"],
        "history": history,
    }
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    torch.save({"model_args": asdict(model.config), "model": state, "metadata": meta}, out_dir / CHECKPOINT_NAME)
    tok.save(out_dir)
    (out_dir / METADATA_NAME).write_text(json.dumps(meta, indent=2))


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
