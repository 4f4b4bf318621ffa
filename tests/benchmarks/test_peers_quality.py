"""benchmarks/peers_quality.py: options, the side-by-side table, fastai's copy of our weights."""

from __future__ import annotations

import pytest
import torch

from lightning_rnn_reg.data import TextCorpus


@pytest.fixture
def quality(bench_module):
    return bench_module("peers_quality")


def test_quick_option_shrinks_model_budget_and_seeds(quality) -> None:
    args = quality.parse_args(["--quick", "--seeds", "7", "8"])
    assert (args.hidden, args.max_steps, args.valid_windows, args.seeds) == (64, 20, 10, [7])


def test_report_gives_the_paired_difference_of_validation_perplexities(quality) -> None:
    results = {seed: {"ours": {"val_ppl": ours, "train_s": 1.0},
                      "fastai": {"val_ppl": fastai, "train_s": 2.0}}
               for seed, ours, fastai in ((1, 100.0, 101.0), (2, 110.0, 109.0))}
    lines = quality.report(results, ["ours", "fastai"]).splitlines()
    assert lines[2:5] == ["| 1 | 100.00 | 101.00 | -1.00 |", "| 2 | 110.00 | 109.00 | +1.00 |",
                          "| mean ± sd | 105.00 ± 7.07 | 105.00 ± 5.66 | 0.00 ± 1.41 |"]


def test_report_without_fastai_has_one_model_column(quality) -> None:
    results = {1: {"ours": {"val_ppl": 100.0, "train_s": 1.0}}}
    assert quality.report(results, ["ours"]).splitlines()[0] == "| seed | ours val ppl |"


def test_objective_adds_ar_and_tar_to_cross_entropy(quality) -> None:
    raw = torch.tensor([[[1.0]], [[3.0]]])  # (T=2, B=1, H=1)
    dropped = torch.tensor([[[2.0]], [[0.0]]])
    logits = torch.zeros(2, 1, 4)
    recipe = quality.Recipe(alpha=2.0, beta=1.0)
    loss = quality.objective((raw, dropped, logits), torch.zeros(2, 1, dtype=torch.long), recipe)
    # CE of uniform logits: ln 4; AR: 2 * mean(4, 0) = 4; TAR: 1 * (3 - 1)^2 = 4
    assert loss.item() == pytest.approx(torch.log(torch.tensor(4.0)).item() + 8.0)


def test_fastai_copy_of_our_weights_gives_the_same_eval_logits(quality) -> None:
    pytest.importorskip("fastai.text.models.awdlstm")
    recipe = quality.Recipe(embedding=8, hidden=12, layers=3)
    models = quality.build_pair(50, recipe, seed=0, names=["ours", "fastai"])
    tokens = torch.randint(0, 50, (7, 3))
    assert quality.max_logit_gap(models, tokens) < 1e-5


def test_without_dropout_ours_and_fastai_train_alike(quality, tmp_path) -> None:
    pytest.importorskip("fastai.text.models.awdlstm")
    generator = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in torch.randint(0, 40, (3000,), generator=generator).tolist()]
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text(" ".join(words) + "\n")
    data = TextCorpus(tmp_path, "train.txt", "valid.txt", "test.txt", batch_size=4,
                              eval_batch_size=4, bptt=10, variable_bptt=True)
    recipe = quality.Recipe(embedding=8, hidden=12, layers=3, embedding_p=0.0, input_p=0.0,
                            between_p=0.0, output_p=0.0, weight_p=1e-9, bptt=10)
    models = quality.build_pair(data.vocab_size, recipe, seed=0, names=["ours", "fastai"])
    losses = [quality.train(model, data, recipe, seed=0, epochs=1, max_steps=8)
              ["final_train_loss"] for model in models.values()]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
