"""Transformer layers shared by CodeFormer and its follow-ups.

Token sequences are batch-first: ``B×N×D`` (``N = s·s`` latent positions, ``D = dim_embd``).
``TransformerSALayer`` keeps the official parameter names (``self_attn``, ``linear1``,
``linear2``, ``norm1``, ``norm2``). Attention runs through ``scaled_dot_product_attention``
(``need_weights=False``), which on CUDA accumulates half-precision inputs in fp32.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class TransformerSALayer(nn.Module):
    """Pre-norm self-attention + GELU MLP block; positions are added to queries and keys.

    Args:
        embed_dim: token width D.
        nhead: attention heads.
        dim_mlp: hidden width of the MLP.

    Shapes: ``tokens, pos: B×N×D -> B×N×D`` (``pos`` broadcasts over B).
    """

    def __init__(self, embed_dim: int, nhead: int = 8, dim_mlp: int = 2048) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dim, nhead, batch_first=True)
        self.linear1 = nn.Linear(embed_dim, dim_mlp)
        self.linear2 = nn.Linear(dim_mlp, embed_dim)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)

    def forward(self, tokens: Tensor, pos: Tensor | None = None) -> Tensor:
        normed = self.norm1(tokens)
        query = normed if pos is None else normed + pos
        attended = self.self_attn(query, query, normed, need_weights=False)[0]
        tokens = tokens + attended
        return tokens + self.linear2(F.gelu(self.linear1(self.norm2(tokens))))


class CrossAttentionLayer(nn.Module):
    """Pre-norm cross-attention from image tokens (queries) to condition tokens (keys/values).

    The attention's output projection starts at zero, so a new layer is an exact no-op
    until trained (lets a network built on CodeFormer reproduce it before fine-tuning).

    Args:
        embed_dim: token width D.
        nhead: attention heads.

    Shapes: ``tokens: B×N×D``, ``context: B×M×D``, ``pos: N×D or B×N×D -> B×N×D``.
    """

    def __init__(self, embed_dim: int, nhead: int = 8) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.cross_attn = nn.MultiheadAttention(embed_dim, nhead, batch_first=True)
        nn.init.zeros_(self.cross_attn.out_proj.weight)
        nn.init.zeros_(self.cross_attn.out_proj.bias)

    def forward(self, tokens: Tensor, context: Tensor, pos: Tensor | None = None) -> Tensor:
        query = self.norm(tokens)
        if pos is not None:
            query = query + pos
        return tokens + self.cross_attn(query, context, context, need_weights=False)[0]


class VectorToTokens(nn.Module):
    """MLP projecting one condition vector (e.g. a 512-d ArcFace embedding) to M tokens.

    The vector is L2-normalised first (ArcFace embeddings are compared by cosine, so their
    length carries no identity), then ``Linear → GELU → Linear`` to ``M·D`` and a LayerNorm
    per token.

    Args:
        in_dim: length of the vector (512 for ArcFace).
        embed_dim: token width D.
        num_tokens: number of tokens M.

    Shapes: ``B×in_dim -> B×M×D``.
    """

    def __init__(self, in_dim: int, embed_dim: int, num_tokens: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.embed_dim = embed_dim
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, embed_dim),
            nn.GELU(),
            nn.Linear(embed_dim, num_tokens * embed_dim),
        )
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, vector: Tensor) -> Tensor:
        unit = F.normalize(vector.float(), dim=-1).to(self.mlp[0].weight.dtype)
        tokens = self.mlp(unit)
        return self.norm(tokens.reshape(vector.shape[0], self.num_tokens, self.embed_dim))
