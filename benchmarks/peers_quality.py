"""Quality cross-check: our AWD-LSTM against fastai's ``AWD_LSTM``, trained on equal terms on PTB.

Both models are the AWD-LSTM of Merity et al. 2017 at a reduced size (default: embedding 200,
3 layers of 400, 400, 200 units, tied decoder) with the paper's regularization: embedding
dropout 0.1, locked dropout 0.4 on the embeddings, 0.3 between layers, 0.4 on the output,
DropConnect 0.5 on each ``W_hh``, AR ``alpha = 2`` on the dropped output, TAR ``beta = 1`` on the
undropped one. What differs is only the module that computes them:

- ours: ``lightning_rnn_reg.LanguageModel.encode`` / ``head`` with ``EmbeddingDropout``,
  ``LockedDropout`` (input / between / output) and ``WeightDrop``;
- fastai: ``fastai.text.models.awdlstm.AWD_LSTM`` (its ``EmbeddingDropout``, ``RNNDropout``,
  ``WeightDropout``) + ``RNNDropout`` on its output + a decoder tied to its embedding (what
  fastai's ``LinearDecoder`` does). fastai's embedding carries a padding row whose gradient
  is zeroed (``pad_token``, default id 1, which is ``<eos>`` in our PTB vocabulary); it gets
  one extra row, id ``V``, that no PTB token uses, and the decoder reads the first ``V`` rows
  only, so every real word trains as in ours.

Equal terms: for each seed both models start from the *same* weights (fastai's are copied from
ours, and the script checks that both give the same logits in eval mode before training), see
the same batches in the same order (PTB through ``lightning_rnn_reg.data.PennTreebank``, batch
20, AWD-LSTM's variable BPTT around 70 with the window lengths drawn from the seed, learning
rate scaled by ``seq_len / 70``), and train in the same plain PyTorch loop (no Lightning, no
fastai ``Learner``): SGD lr 30, weight decay 1.2e-6, gradient norm clipped at 0.25, the hidden
state carried across windows and detached, torch's generator seeded with the seed before each
run. With a budget of a few epochs NT-ASGD would not switch yet (it waits for ``nonmono = 5``
evaluations), so plain SGD is the recipe here. Validation perplexity (batch 10, windows of
70) is reported side by side per seed, with the paired difference.

Usage::

    python benchmarks/peers_quality.py                      # 1 epoch, seeds 141 142 143
    python benchmarks/peers_quality.py --quick              # smoke test, a couple of minutes
    python benchmarks/peers_quality.py --epochs 3 --seeds 1 2 3 4 5 --markdown quality.md
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lightning_rnn_reg as lrr
from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.data import PennTreebank, TextCorpus
from lightning_rnn_reg.data.readers import default_data_dir
from lightning_rnn_reg.tasks.language_model import detach_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import markdown_table, skip_reason

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    """The hyperparameters both models share (AWD-LSTM's, at a reduced size)."""

    embedding: int = 200
    hidden: int = 400
    layers: int = 3
    embedding_p: float = 0.1
    input_p: float = 0.4
    between_p: float = 0.3
    output_p: float = 0.4
    weight_p: float = 0.5
    alpha: float = 2.0
    beta: float = 1.0
    lr: float = 30.0
    weight_decay: float = 1.2e-6
    clip: float = 0.25
    batch: int = 20
    eval_batch: int = 10
    bptt: int = 70


Outputs = tuple[Tensor, Tensor, Tensor]  # raw last-layer output, dropped output, logits


class _Ours(nn.Module):
    """Our AWD-LSTM: ``LanguageModel`` with the recipe's regularizers; carries its state."""

    def __init__(self, vocab: int, recipe: Recipe) -> None:
        super().__init__()
        regularizers = [lrr.EmbeddingDropout(recipe.embedding_p),
                        lrr.LockedDropout(recipe.input_p, at="input"),
                        lrr.LockedDropout(recipe.between_p, at="between"),
                        lrr.LockedDropout(recipe.output_p, at="output"),
                        lrr.WeightDrop(recipe.weight_p)]
        self.lm = lrr.LanguageModel(vocab, recipe.embedding, recipe.hidden, recipe.layers,
                                    tie_weights=True, regularizers=regularizers)
        self.state: Any = None

    def reset(self) -> None:
        self.state = None

    def forward(self, tokens: Tensor) -> Outputs:
        raw, dropped, state = self.lm.encode(tokens, self.state)
        self.state = detach_state(state)
        return raw, dropped, self.lm.head(dropped)


class _Fastai(nn.Module):
    """fastai's AWD_LSTM + output RNNDropout + tied decoder over the first ``vocab`` rows."""

    def __init__(self, vocab: int, recipe: Recipe) -> None:
        super().__init__()
        from fastai.text.models.awdlstm import AWD_LSTM, RNNDropout

        self.vocab = vocab
        self.encoder = AWD_LSTM(vocab + 1, recipe.embedding, recipe.hidden, recipe.layers,
                                pad_token=vocab, hidden_p=recipe.between_p,
                                input_p=recipe.input_p, embed_p=recipe.embedding_p,
                                weight_p=recipe.weight_p)
        self.output_dp = RNNDropout(recipe.output_p)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def reset(self) -> None:
        self.encoder.reset()

    def forward(self, tokens: Tensor) -> Outputs:
        raw = self.encoder(tokens.t())  # batch-first inside; it carries and detaches its state
        dropped = self.output_dp(raw)
        logits = F.linear(dropped, self.encoder.encoder.weight[: self.vocab], self.bias)
        return raw.transpose(0, 1), dropped.transpose(0, 1), logits.transpose(0, 1)

    @torch.no_grad()
    def copy_from(self, ours: _Ours) -> None:
        """Take over our weights, so both models start from the same point."""
        self.encoder.encoder.weight[: self.vocab].copy_(ours.lm.embedding.weight)
        for theirs, mine in zip(self.encoder.rnns, ours.lm.rnns, strict=True):
            for name in ("weight_ih_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(theirs.module, name).copy_(getattr(mine, name))
            theirs.weight_hh_l0_raw.copy_(mine.weight_hh_l0)
            theirs.reset()
        self.bias.copy_(ours.lm.decoder.bias)


def objective(outputs: Outputs, targets: Tensor, recipe: Recipe) -> Tensor:
    """Cross-entropy + AR on the dropped output + TAR on the undropped one (Merity 2017)."""
    raw, dropped, logits = outputs
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return (ce + LF.activation_regularization(dropped, recipe.alpha)
            + LF.temporal_activation_regularization(raw, recipe.beta))


def build_pair(vocab: int, recipe: Recipe, seed: int, names: Sequence[str]
               ) -> dict[str, nn.Module]:
    """Our model initialised from ``seed``, and fastai's with the same weights."""
    torch.manual_seed(seed)
    ours = _Ours(vocab, recipe)
    models: dict[str, nn.Module] = {"ours": ours}
    if "fastai" in names:
        fastai = _Fastai(vocab, recipe)
        fastai.copy_from(ours)
        models["fastai"] = fastai
    return models


@torch.no_grad()
def max_logit_gap(models: dict[str, nn.Module], tokens: Tensor) -> float:
    """Largest difference of the eval-mode logits of the models on ``tokens``."""
    logits = []
    for model in models.values():
        model.eval()
        model.reset()
        logits.append(model(tokens)[2])
    return max((logit - logits[0]).abs().max().item() for logit in logits)


def train(model: nn.Module, data: TextCorpus, recipe: Recipe, seed: int, epochs: int,
          max_steps: int | None) -> dict[str, float]:
    """The shared training loop; returns steps, seconds and the mean loss of the last steps."""
    torch.manual_seed(seed)
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    losses: list[float] = []
    start = time.perf_counter()
    for epoch in range(epochs):
        loader = data.train_dataloader()
        loader.sampler.set_epoch(epoch)
        model.train()
        for batch in loader:
            if batch.start == 0:
                model.reset()
            loss = objective(model(batch.inputs), batch.targets, recipe)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, recipe.clip)
            for group in optimizer.param_groups:
                group["lr"] = recipe.lr * batch.seq_len / recipe.bptt
            optimizer.step()
            losses.append(loss.item())
            if max_steps is not None and len(losses) >= max_steps:
                break
        if max_steps is not None and len(losses) >= max_steps:
            break
    tail = losses[-max(1, len(losses) // 10):]
    return {"steps": len(losses), "train_s": time.perf_counter() - start,
            "final_train_loss": statistics.fmean(tail)}


@torch.no_grad()
def validation_perplexity(model: nn.Module, data: TextCorpus, windows: int | None) -> float:
    """``exp`` of the mean next-token cross-entropy over the validation windows."""
    model.eval()
    model.reset()
    total, count = 0.0, 0
    for index, batch in enumerate(data.val_dataloader()):
        if windows is not None and index >= windows:
            break
        logits = model(batch.inputs)[2]
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1),
                                 reduction="sum").item()
        count += batch.targets.numel()
    return math.exp(total / count)


def data_dir(given: str | None) -> Path:
    """``given``, else ``$LRR_DATA/ptb``, else ``<repo>/../shared/data/ptb``."""
    if given is not None:
        return Path(given)
    return default_data_dir("ptb") or REPO.parent / "shared" / "data" / "ptb"


def run_seed(recipe: Recipe, seed: int, args: argparse.Namespace, names: Sequence[str]
             ) -> dict[str, dict[str, float]]:
    """Both models for one seed: same initial weights, same batches, same loop."""
    data = PennTreebank(data_dir(args.data_dir), batch_size=recipe.batch,
                        eval_batch_size=recipe.eval_batch, bptt=recipe.bptt, variable_bptt=True,
                        seed=seed)
    data.setup("fit")
    models = build_pair(data.vocab_size, recipe, seed, names)
    probe = next(iter(data.val_dataloader())).inputs
    gap = max_logit_gap(models, probe)
    if gap > 1e-4:
        raise RuntimeError(f"seed {seed}: the models differ before training (logits {gap:.2e})")
    results = {}
    for name, model in models.items():
        result = train(model, data, recipe, seed, args.epochs, args.max_steps)
        result["val_ppl"] = validation_perplexity(model, data, args.valid_windows)
        result["start_logit_gap"] = gap
        results[name] = result
        print(f"seed {seed} {name}: val ppl {result['val_ppl']:.2f} after {result['steps']} "
              f"steps ({result['train_s']:.0f} s)", flush=True)
    return results


def _mean_sd(values: Sequence[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def report(results: dict[int, dict[str, dict[str, float]]], names: Sequence[str]) -> str:
    """Markdown: validation perplexity per seed side by side, mean ± sd, paired difference."""
    headers = ["seed", *(f"{name} val ppl" for name in names)]
    paired = len(names) == 2
    if paired:
        headers.append("ours - fastai")
    rows, diffs = [], []
    for seed, by_model in results.items():
        row = [str(seed), *(f"{by_model[name]['val_ppl']:.2f}" for name in names)]
        if paired:
            diffs.append(by_model["ours"]["val_ppl"] - by_model["fastai"]["val_ppl"])
            row.append(f"{diffs[-1]:+.2f}")
        rows.append(row)
    summary = ["mean ± sd", *(_mean_sd([r[name]["val_ppl"] for r in results.values()])
                              for name in names)]
    if paired:
        summary.append(_mean_sd(diffs))
    runs = list(results.values())
    seconds = ["train s (mean)",
               *(f"{statistics.fmean(run[name]['train_s'] for run in runs):.0f}" for name in names)]
    return markdown_table(headers, [*rows, summary, seconds + ([""] if paired else [])])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shrinks the model and the budget to a smoke test."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder of ptb.*.txt (default: $LRR_DATA/ptb, else "
                             "../shared/data/ptb beside the repository)")
    parser.add_argument("--embedding", type=int, default=Recipe.embedding)
    parser.add_argument("--hidden", type=int, default=Recipe.hidden)
    parser.add_argument("--layers", type=int, default=Recipe.layers)
    parser.add_argument("--epochs", type=int, default=1, help="training budget in epochs")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop training after this many windows (budget cap)")
    parser.add_argument("--valid-windows", type=int, default=None,
                        help="evaluate on the first N validation windows only (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[141, 142, 143])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 3 x 64 units, 20 steps, 10 validation windows, 1 seed")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--json", help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.embedding, args.hidden, args.max_steps = 32, 64, 20
        args.valid_windows, args.seeds = 10, args.seeds[:1]
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the cross-check; returns what ``--json`` writes."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = ["ours", "fastai"]
    if (reason := skip_reason(["fastai"])) is not None:
        print(f"fastai: skipped: {reason}", flush=True)
        names.remove("fastai")
    recipe = Recipe(embedding=args.embedding, hidden=args.hidden, layers=args.layers)
    print(f"recipe: {recipe}", flush=True)
    results = {seed: run_seed(recipe, seed, args, names) for seed in args.seeds}
    table = report(results, names)
    print(table, flush=True)
    output = {"recipe": asdict(recipe), "seeds": args.seeds, "epochs": args.epochs,
              "max_steps": args.max_steps, "valid_windows": args.valid_windows,
              "torch": torch.__version__, "results": results}
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=2) + "\n")
    return output


if __name__ == "__main__":
    main()
