"""Embedding dropout: whole word types dropped from the embedding matrix (Gal & Ghahramani
2016; Merity et al. 2017). Train: ``E[w] * m_w / (1 - p)`` with one ``m_w`` per word type and
sequence; eval: ``E[w]``. The lookup honours the embedding's ``padding_idx``, ``max_norm``,
``norm_type``, ``scale_grad_by_freq`` and ``sparse`` exactly as ``nn.Embedding`` does.
"""

from __future__ import annotations

from torch import Tensor, nn

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.mask_stats import records_masks
from lightning_rnn_reg.regularizers.base import Regularizer


class EmbeddingDropout(Regularizer):
    """Drop whole word types of an embedding, Gal & Ghahramani 2016; Merity et al. 2017.

    For each sequence an independent mask over the vocabulary ``m_w ~ Bernoulli(1 - p)`` is
    drawn; every occurrence of word ``w`` in that sequence is embedded as
    ``E[w] * m_w / (1 - p)`` (so repeated words share their mask). Eval: ``E[w]``.

    Call it with the ``nn.Embedding`` and the token ids ``(T, B)`` (or ``(B, T)`` with
    ``batch_first``); returns ``(T, B, E)``. ``E[w]`` is what ``embedding(ids)`` gives: the
    embedding's ``padding_idx``, ``max_norm`` (rows renormalized in place, as
    ``nn.Embedding`` does), ``norm_type``, ``scale_grad_by_freq`` and ``sparse`` (a sparse
    gradient) are honoured, so eval and ``p = 0`` equal ``embedding(ids)``.

    Example::

        emb, edrop = nn.Embedding(10000, 400), lrr.EmbeddingDropout(0.1)
        x = edrop(emb, tokens)          # tokens: (35, 20) long
    """

    site = "embedding"

    def __init__(self, p: float = 0.1, batch_first: bool = False) -> None:
        super().__init__()
        self.p = p
        self.batch_first = batch_first

    @records_masks
    def forward(self, embedding: nn.Embedding, ids: Tensor) -> Tensor:
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(
                f"EmbeddingDropout expects an nn.Embedding, got {type(embedding).__name__}"
            )
        return LF.embedding_dropout(
            ids,
            embedding.weight,
            self.p,
            self.training,
            batch_first=self.batch_first,
            padding_idx=embedding.padding_idx,
            max_norm=embedding.max_norm,
            norm_type=embedding.norm_type,
            scale_grad_by_freq=embedding.scale_grad_by_freq,
            sparse=embedding.sparse,
        )
