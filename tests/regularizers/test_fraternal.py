"""Fraternal dropout's objective (Zolna 2017): mean of both CE + kappa * mean((z1 - z2)^2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.regularizers import FraternalDropout

T, B, C = 4, 3, 5


def hand_ce(z: torch.Tensor, target: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean negative log-likelihood of ``target`` under softmax(z), ignored positions skipped."""
    z, target = z.reshape(-1, z.shape[-1]), target.reshape(-1)
    valid = target != ignore_index
    log_probs = z - z.exp().sum(-1, keepdim=True).log()
    picked = log_probs[valid].gather(1, target[valid].unsqueeze(1)).squeeze(1)
    return -picked.mean()


def logits_and_target() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z1 = torch.randn(T, B, C, dtype=torch.float64)
    z2 = torch.randn(T, B, C, dtype=torch.float64)
    return z1, z2, torch.randint(0, C, (T, B))


def test_loss_is_mean_ce_plus_kappa_mean_square_difference():
    z1, z2, y = logits_and_target()
    expected = 0.5 * (hand_ce(z1, y) + hand_ce(z2, y)) + 0.7 * ((z1 - z2) ** 2).mean()
    torch.testing.assert_close(FraternalDropout(kappa=0.7)(z1, z2, y), expected)


def test_zero_kappa_is_mean_of_two_ce_losses():
    z1, z2, y = logits_and_target()
    expected = (
        F.cross_entropy(z1.reshape(-1, C), y.reshape(-1))
        + F.cross_entropy(z2.reshape(-1, C), y.reshape(-1))
    ) / 2
    torch.testing.assert_close(FraternalDropout(kappa=0.0)(z1, z2, y), expected)


def test_identical_passes_give_plain_ce():
    z1, _, y = logits_and_target()
    expected = F.cross_entropy(z1.reshape(-1, C), y.reshape(-1))
    torch.testing.assert_close(FraternalDropout(kappa=5.0)(z1, z1.clone(), y), expected)


def test_penalty_is_kappa_mean_square_difference():
    z1, z2, _ = logits_and_target()
    torch.testing.assert_close(FraternalDropout(0.3).penalty(z1, z2), 0.3 * ((z1 - z2) ** 2).mean())


def test_penalty_hand_value():
    z1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    # squared differences 0, 4, 9, 0 -> mean 3.25
    assert FraternalDropout(2.0).penalty(z1, z2).item() == 6.5


def test_ignore_index_positions_are_left_out_of_ce_and_penalty():
    z1, z2, y = logits_and_target()
    y[0, :] = -100
    valid = y != -100
    penalty = 0.2 * ((z1[valid] - z2[valid]) ** 2).mean()
    expected = 0.5 * (hand_ce(z1, y) + hand_ce(z2, y)) + penalty
    torch.testing.assert_close(FraternalDropout(0.2)(z1, z2, y), expected)


def test_gradient_of_penalty_pulls_passes_together():
    z1 = torch.zeros(2, 3, requires_grad=True)
    z2 = torch.ones(2, 3, requires_grad=True)
    FraternalDropout(1.0).penalty(z1, z2).backward()
    torch.testing.assert_close(z1.grad, torch.full((2, 3), -2.0 / 6))
    torch.testing.assert_close(z2.grad, torch.full((2, 3), 2.0 / 6))


def test_functional_loss_matches_module():
    z1, z2, y = logits_and_target()
    torch.testing.assert_close(LF.fraternal_loss(z1, z2, y, 0.4), FraternalDropout(0.4)(z1, z2, y))
