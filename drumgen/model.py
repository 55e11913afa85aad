"""DrumPatternTransformer: a small decoder-only transformer with a key/value cache.

nanoGPT-shaped: a config dataclass, pre-norm blocks, learned positions, tied
embeddings. The checkpoint is ``{"model_args": asdict(config), "model": state_dict, ...}``
and is rebuilt with ``DrumPatternTransformer(ModelConfig(**ckpt["model_args"]))`` (see
:func:`drumgen.model_loader.load_model`, which also reads checkpoints made before ``gelu`` and
``timing_head`` existed).

Besides the next token, a small timing head reads the same final hidden state and predicts the
micro-timing of the hit just fed: the mean and log standard deviation (in 16ths) of how far the
drummer played it from its grid step, as GrooVAE learns offsets. Sampling a hit's timing costs
nothing extra: the step that feeds the hit to predict the next token computes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

LOG_STD_MIN, LOG_STD_MAX = -6.0, 0.0  # the timing head's log std in 16ths: from ~0.25 % to a whole 16th
TIMING_HIDDEN = 64  # width of the timing head's one hidden layer


@dataclass
class ModelConfig:
    """Defaults are the shipped model: 1.59 M parameters, 3 layers, 4 heads, width 192, context 1024."""

    vocab_size: int = 325
    block_size: int = 1024  # longest sequence (tokens) the model attends over
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 192
    dropout: float = 0.1
    gelu: str = "tanh"  # "tanh" (fast on CPU) or "none" (exact erf)
    timing_head: bool = True  # predict each hit's micro-timing (mean, log std in 16ths)

    def __post_init__(self) -> None:
        if self.gelu not in ("tanh", "none"):
            raise ValueError(f"gelu must be 'tanh' or 'none', got {self.gelu!r}")


class KVCache:
    """Preallocated keys and values of every layer: (layers, B, heads, block_size, head_dim).

    Rows may hold sequences of different lengths (``lengths``, (B,)): a row whose context
    was rebuilt is shorter than the others, and attention masks out what it has not filled.
    """

    def __init__(self, config: ModelConfig, batch: int, device: torch.device | str, dtype: torch.dtype) -> None:
        shape = (config.n_layer, batch, config.n_head, config.block_size, config.n_embd // config.n_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.lengths = torch.zeros(batch, dtype=torch.long, device=device)  # positions filled per row
        self.uniform = True  # all rows have the same length
        self.length = 0  # the longest row's length (kept as a Python int: no device sync per step)

    def advance(self, steps: int) -> None:
        """Every row took ``steps`` more positions."""
        self.lengths += steps
        self.length += steps

    def _lengths_changed(self) -> None:
        self.length = int(self.lengths.max())
        self.uniform = bool((self.lengths == self.lengths[0]).all())

    def keep_rows(self, rows: list[int]) -> None:
        """Drop every row not in ``rows`` (samples that have finished)."""
        index = torch.tensor(rows, device=self.k.device)
        self.k, self.v = self.k.index_select(1, index), self.v.index_select(1, index)
        self.lengths = self.lengths.index_select(0, index)
        self._lengths_changed()

    def copy_row_from(self, other: KVCache, row: int) -> None:
        """Replace row ``row`` with the single-row cache ``other`` (a rebuilt context)."""
        n = other.length
        self.k[:, row, :, :n] = other.k[:, 0, :, :n]
        self.v[:, row, :, :n] = other.v[:, 0, :, :n]
        self.lengths[row] = n
        self._lengths_changed()


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        B, T, C = x.shape
        # project to queries, keys, values: each (B, nh, T, hd)
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if cache is None:
            drop = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        elif cache.uniform:
            # write this step's keys/values into the cache, attend over everything so far
            start = cache.length
            cache.k[layer, :, :, start:start + T] = k
            cache.v[layer, :, :, start:start + T] = v
            keys, values = cache.k[layer, :, :, :start + T], cache.v[layer, :, :, :start + T]
            if T == 1:
                y = F.scaled_dot_product_attention(q, keys, values)
            else:  # prefill: causal within the new block, full view of the past
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        else:  # rows of different lengths, one new token each: write at each row's end
            if T != 1:
                raise ValueError("a cache with rows of different lengths takes one token at a time")
            rows = torch.arange(B, device=x.device)
            cache.k[layer, rows, :, cache.lengths] = k[:, :, 0]
            cache.v[layer, rows, :, cache.lengths] = v[:, :, 0]
            span = cache.length + 1
            valid = torch.arange(span, device=x.device)[None, :] <= cache.lengths[:, None]  # (B, span)
            keys, values = cache.k[layer, :, :, :span], cache.v[layer, :, :, :span]
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=valid[:, None, None, :])
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(approximate=config.gelu),
            nn.Linear(4 * config.n_embd, config.n_embd), nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class DrumPatternTransformer(nn.Module):
    """Decoder-only transformer over drum tokens; ``forward`` takes an optional KV cache."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # tied embeddings
        # the timing head reads the trunk's final state without training it (see _timing), so adding
        # it leaves the token model exactly as it learns alone
        self.timing = nn.Sequential(nn.Linear(config.n_embd, TIMING_HIDDEN), nn.GELU(approximate="tanh"),
                                    nn.Linear(TIMING_HIDDEN, 2)) if config.timing_head else None
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def new_cache(self, batch: int) -> KVCache:
        p = next(self.parameters())
        return KVCache(self.config, batch, p.device, p.dtype)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None, last_only: bool = False,
                with_timing: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) for token ids ``idx`` (B, T); with a cache, ``idx`` continues it. With
        ``with_timing``, also each position's timing prediction (B, T, 2): mean and log standard
        deviation, in 16ths, of the offset of the hit at that position (None without a timing head)."""
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        if T == 1 and cache is not None and cache.uniform and not self.training:
            logits, hidden = self._decode_step(idx, cache)
            return (logits, self._timing(hidden)) if with_timing else logits
        if cache is not None and not cache.uniform:
            pos = cache.lengths[:, None]  # (B, 1): each row continues at its own length
        else:
            pos = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None:
            cache.advance(T)
        if last_only:
            x = x[:, -1:, :]
        x = self.ln_f(x)
        logits = self.head(x)  # (B, T or 1, V)
        return (logits, self._timing(x)) if with_timing else logits

    def _timing(self, hidden: torch.Tensor) -> torch.Tensor | None:
        """Timing predictions (..., 2) from final hidden states (..., C): mean and clamped log std."""
        if self.timing is None:
            return None
        out = self.timing(hidden.detach())  # no gradient into the trunk: timing does not pull on the tokens
        return torch.stack([out[..., 0], out[..., 1].clamp(LOG_STD_MIN, LOG_STD_MAX)], dim=-1)

    def _decode_step(self, idx: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` for one new token per row of a uniform cache, in eval mode: the same
        math written on the weights directly. Generation runs this once per token, and without
        module calls it is 15-20 % faster on a CPU (tests check it matches the module path)."""
        c = self.config
        B, C, nh = idx.size(0), c.n_embd, c.n_head
        start = cache.length
        x = self.tok_emb.weight[idx[:, 0]] + self.pos_emb.weight[start]  # (B, C)
        for i, (ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b) \
                in enumerate(self._layer_weights()):
            q, k, v = F.linear(F.layer_norm(x, (C,), ln1_w, ln1_b), qkv_w, qkv_b).view(B, 3, nh, 1, C // nh).unbind(1)
            keys, values = cache.k[i], cache.v[i]  # (B, nh, block, hd)
            keys[:, :, start] = k[:, :, 0]
            values[:, :, start] = v[:, :, 0]
            y = F.scaled_dot_product_attention(q, keys[:, :, :start + 1], values[:, :, :start + 1])
            x = x + F.linear(y.view(B, C), proj_w, proj_b)
            h = F.gelu(F.linear(F.layer_norm(x, (C,), ln2_w, ln2_b), fc_w, fc_b), approximate=c.gelu)
            x = x + F.linear(h, out_w, out_b)
        cache.advance(1)
        x = F.layer_norm(x, (C,), self.ln_f.weight, self.ln_f.bias)[:, None, :]  # (B, 1, C)
        return F.linear(x, self.head.weight), x  # logits (B, 1, V), final hidden (B, 1, C)

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .float(), ...: collect the weights anew
        self._weights = None
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, *args, **kwargs):  # assign=True replaces the Parameter objects
        self._weights = None
        return super().load_state_dict(*args, **kwargs)

    def _layer_weights(self) -> list[tuple[nn.Parameter, ...]]:
        """Each block's parameters in the order :meth:`_decode_step` uses them, collected at the
        first step after construction, ``load_state_dict`` or a device/dtype move. (Code that
        swaps parameters some other way, e.g. pruning or adapters, must reset ``_weights``.)"""
        if getattr(self, "_weights", None) is None:
            self._weights = [(b.ln1.weight, b.ln1.bias, b.attn.qkv.weight, b.attn.qkv.bias, b.attn.proj.weight,
                              b.attn.proj.bias, b.ln2.weight, b.ln2.bias, b.mlp[0].weight, b.mlp[0].bias,
                              b.mlp[2].weight, b.mlp[2].bias) for b in self.blocks]
        return self._weights
