"""``EmbeddingDropout``: whole word types dropped per sequence (Gal 2016; Merity 2017)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.mode import mc_dropout, no_dropout
from lightning_rnn_reg.regularizers import EmbeddingDropout

RATES = [0.1, 0.5, 0.8]


def band(p: float, n: int) -> float:
    """Five standard deviations of the empirical frequency of n Bernoulli(p) draws."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


def ones_embedding(vocab: int, dim: int = 1) -> nn.Embedding:
    emb = nn.Embedding(vocab, dim).double()
    with torch.no_grad():
        emb.weight.fill_(1.0)
    return emb


def row_mask(out: torch.Tensor) -> torch.Tensor:
    """The per-token mask of an all-ones embedding (every dimension must agree)."""
    assert torch.equal(out, out[..., :1].expand_as(out)), "a row was dropped only in part"
    return out[..., 0]


@pytest.mark.parametrize("p", RATES)
def test_drop_fraction_over_word_types_matches_p(p):
    vocab, batch = 2000, 100  # every sequence holds every word once: 200k independent draws
    ids = torch.stack([torch.randperm(vocab) for _ in range(batch)], dim=1)
    out = EmbeddingDropout(p)(ones_embedding(vocab), ids)
    mask = row_mask(out)
    assert abs((mask == 0).double().mean().item() - p) < band(p, mask.numel())


@pytest.mark.parametrize("p", RATES)
def test_kept_rows_scaled_exactly(p):
    emb = ones_embedding(50, dim=8)
    out = EmbeddingDropout(p)(emb, torch.randint(0, 50, (30, 20)))
    assert set(out.unique().tolist()) == {0.0, 1.0 / (1.0 - p)}


def test_kept_rows_equal_embedding_over_keep():
    emb = nn.Embedding(50, 8).double()
    ids = torch.randint(0, 50, (30, 20))
    out = EmbeddingDropout(0.3)(emb, ids)
    plain = F.embedding(ids, emb.weight)
    kept = out.abs().sum(-1) != 0
    torch.testing.assert_close(out[kept], plain[kept] / 0.7, rtol=1e-12, atol=0.0)


def test_whole_rows_are_dropped():
    emb = ones_embedding(50, dim=16)
    out = EmbeddingDropout(0.5)(emb, torch.randint(0, 50, (30, 20)))
    mask = row_mask(out)
    assert (mask == 0).any() and (mask != 0).any()


def test_repeated_words_in_a_sequence_share_the_mask():
    vocab, steps, batch = 5, 60, 8
    ids = torch.randint(0, vocab, (steps, batch))
    mask = row_mask(EmbeddingDropout(0.5)(ones_embedding(vocab), ids))
    for b in range(batch):
        for w in ids[:, b].unique():
            assert mask[ids[:, b] == w, b].unique().numel() == 1


def test_repeated_words_share_the_mask_with_batch_first():
    vocab, batch, steps = 5, 8, 60
    ids = torch.randint(0, vocab, (batch, steps))
    mask = row_mask(EmbeddingDropout(0.5, batch_first=True)(ones_embedding(vocab), ids))
    for b in range(batch):
        for w in ids[b].unique():
            assert mask[b, ids[b] == w].unique().numel() == 1


def test_different_sequences_have_independent_masks():
    vocab = 1000
    ids = torch.arange(vocab).unsqueeze(1).expand(vocab, 2)  # two identical sequences
    mask = row_mask(EmbeddingDropout(0.5)(ones_embedding(vocab), ids))
    agree = (mask[:, 0] == mask[:, 1]).double().mean().item()
    assert abs(agree - 0.5) < band(0.5, vocab)  # independent: P(agree) = p^2 + (1-p)^2


def test_one_dim_ids_are_one_sequence():
    ids = torch.tensor([3, 1, 3, 3, 1, 2, 2, 3])
    mask = row_mask(EmbeddingDropout(0.5)(ones_embedding(4), ids))
    for w in ids.unique():
        assert mask[ids == w].unique().numel() == 1


def test_eval_equals_plain_embedding():
    emb = nn.Embedding(50, 8, padding_idx=0)
    ids = torch.randint(0, 50, (30, 20))
    out = EmbeddingDropout(0.5).eval()(emb, ids)
    assert torch.equal(out, F.embedding(ids, emb.weight, padding_idx=0))


def test_eval_draws_nothing():
    emb, ids = nn.Embedding(50, 8), torch.randint(0, 50, (30, 20))
    state = torch.get_rng_state()
    EmbeddingDropout(0.5).eval()(emb, ids)
    assert torch.equal(torch.get_rng_state(), state)


def test_zero_rate_equals_plain_embedding_without_drawing():
    emb, ids = nn.Embedding(50, 8), torch.randint(0, 50, (30, 20))
    state = torch.get_rng_state()
    out = EmbeddingDropout(0.0)(emb, ids)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(out, F.embedding(ids, emb.weight))


def test_no_dropout_in_train_equals_plain_embedding():
    emb, ids = nn.Embedding(50, 8), torch.randint(0, 50, (30, 20))
    with no_dropout():
        out = EmbeddingDropout(0.5).train()(emb, ids)
    assert torch.equal(out, F.embedding(ids, emb.weight))


def test_mc_dropout_drops_in_eval():
    emb = ones_embedding(50)
    with mc_dropout():
        out = EmbeddingDropout(0.5).eval()(emb, torch.randint(0, 50, (30, 20)))
    assert (out == 0).any()


def test_gradient_reaches_only_kept_rows():
    vocab = 20
    emb = nn.Embedding(vocab, 4)
    ids = torch.arange(vocab).unsqueeze(1)  # one sequence, every word once
    out = EmbeddingDropout(0.5)(emb, ids)
    out.sum().backward()
    kept = out[:, 0].abs().sum(-1) != 0
    torch.testing.assert_close(emb.weight.grad[kept], torch.full((int(kept.sum()), 4), 2.0))
    assert torch.equal(emb.weight.grad[~kept], torch.zeros(int((~kept).sum()), 4))


def test_functional_form_uses_given_generator():
    weight, ids = torch.ones(50, 4), torch.randint(0, 50, (30, 20))
    a = LF.embedding_dropout(ids, weight, 0.5, generator=torch.Generator().manual_seed(3))
    b = LF.embedding_dropout(ids, weight, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_rejects_non_embedding_module():
    with pytest.raises(TypeError, match=r"nn\.Embedding"):
        EmbeddingDropout(0.1)(nn.Linear(3, 4), torch.zeros(2, 2, dtype=torch.long))


# ------------------------------------------------- the embedding's own lookup options
VOCAB, DIM = 50, 8
#: nn.Embedding options that change its lookup or its gradient (F.embedding's arguments).
OPTIONS = {
    "max_norm": {"max_norm": 1.0},
    "max_norm_l1": {"max_norm": 2.0, "norm_type": 1.0},
    "scale_grad_by_freq": {"scale_grad_by_freq": True},
    "sparse": {"sparse": True},
    "padding_idx_and_max_norm": {"padding_idx": 0, "max_norm": 1.5},
}


def twin_embeddings(options: dict) -> tuple[nn.Embedding, nn.Embedding]:
    """Two equal embeddings with ``options``, rows of norm ~ 3 * sqrt(DIM) (so max_norm acts)."""
    torch.manual_seed(0)
    emb = nn.Embedding(VOCAB, DIM, **options)
    with torch.no_grad():
        emb.weight.mul_(3.0)
    twin = nn.Embedding(VOCAB, DIM, **options)
    twin.load_state_dict(emb.state_dict())
    return emb, twin


def token_mask(ids: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """The per-token mask ``m_w / (1 - p)`` (``(T, B, 1)``) that EmbeddingDropout draws for
    ``ids`` from ``torch.manual_seed(seed)``: read off an all-ones embedding of one dimension
    (the draw depends only on the ids, the dtype and the generator)."""
    ones = nn.Embedding(VOCAB, 1)
    with torch.no_grad():
        ones.weight.fill_(1.0)
    torch.manual_seed(seed)
    return EmbeddingDropout(p)(ones, ids).detach()


def grad_of(emb: nn.Embedding) -> torch.Tensor:
    grad = emb.weight.grad
    assert grad is not None
    return grad


def assert_same_gradient(emb: nn.Embedding, twin: nn.Embedding) -> None:
    grad, expected = grad_of(emb), grad_of(twin)
    assert grad.is_sparse == expected.is_sparse
    torch.testing.assert_close(grad.to_dense(), expected.to_dense(), rtol=1e-6, atol=1e-7)


def backward(out: torch.Tensor, seed: int = 1) -> None:
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))).sum().backward()


def ids_with_repeats() -> torch.Tensor:
    return torch.randint(0, VOCAB, (30, 20), generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_eval_equals_the_embeddings_own_lookup_with_its_options(options):
    emb, twin = twin_embeddings(options)
    ids = ids_with_repeats()
    out, expected = EmbeddingDropout(0.5).eval()(emb, ids), twin(ids)
    assert torch.equal(out, expected)
    assert torch.equal(emb.weight, twin.weight)  # the same rows renormalized in place


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_eval_gradient_equals_the_embeddings_own_gradient(options):
    emb, twin = twin_embeddings(options)
    ids = ids_with_repeats()
    backward(EmbeddingDropout(0.5).eval()(emb, ids))
    backward(twin(ids))
    assert_same_gradient(emb, twin)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_zero_rate_in_train_equals_the_embeddings_own_lookup_and_gradient(options):
    emb, twin = twin_embeddings(options)
    ids = ids_with_repeats()
    out, expected = EmbeddingDropout(0.0).train()(emb, ids), twin(ids)
    assert torch.equal(out, expected) and torch.equal(emb.weight, twin.weight)
    backward(out)
    backward(expected)
    assert_same_gradient(emb, twin)


def _dropped_and_reference(options):
    """EmbeddingDropout(0.4) of ``emb`` and F.embedding of its twin times the same mask."""
    p, seed = 0.4, 5
    emb, twin = twin_embeddings(options)
    ids = ids_with_repeats()
    mask = token_mask(ids, p, seed)
    assert (mask == 0).any() and (mask != 0).any()
    torch.manual_seed(seed)
    out = EmbeddingDropout(p).train()(emb, ids)
    return emb, twin, out, F.embedding(ids, twin.weight, **options) * mask


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_train_equals_f_embedding_with_the_options_times_the_type_mask(options):
    emb, twin, out, expected = _dropped_and_reference(options)
    torch.testing.assert_close(out, expected, rtol=0.0, atol=0.0)
    assert torch.equal(emb.weight, twin.weight)  # renormalized as F.embedding does


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_train_gradient_equals_f_embedding_gradient_times_the_type_mask(options):
    emb, twin, out, expected = _dropped_and_reference(options)
    backward(out)
    backward(expected)
    assert_same_gradient(emb, twin)


def test_sparse_embedding_gets_a_sparse_gradient_equal_to_the_dense_one_in_training():
    sparse, _ = twin_embeddings({"sparse": True})
    dense, _ = twin_embeddings({})
    ids = ids_with_repeats()
    for emb in (sparse, dense):
        torch.manual_seed(7)
        backward(EmbeddingDropout(0.5).train()(emb, ids))
    assert grad_of(sparse).is_sparse and not grad_of(dense).is_sparse
    torch.testing.assert_close(grad_of(sparse).to_dense(), grad_of(dense))


def test_functional_form_takes_the_lookup_options():
    emb, twin = twin_embeddings({"max_norm": 1.0, "sparse": True})
    ids = ids_with_repeats()
    out = LF.embedding_dropout(ids, emb.weight, 0.5, training=False, max_norm=1.0, sparse=True)
    assert torch.equal(out, twin(ids)) and torch.equal(emb.weight, twin.weight)
    backward(out)
    assert grad_of(emb).is_sparse
