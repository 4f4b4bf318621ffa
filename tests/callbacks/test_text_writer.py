"""TextPredictionWriter: a real ``Trainer.predict`` of a tiny language model on raw text writes
scores or seeded continuations, one line per input line, from Python and from the CLI."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import lightning as L
import pytest
import torch
import yaml

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import TextPredictionWriter
from lightning_rnn_reg.cli import main
from lightning_rnn_reg.data import TextCorpus
from tests.tasks.conftest import write_pattern_corpus

PROMPTS = ["the cat", "a dog sees", "", "my bird likes", "the dog"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_pattern_corpus(tmp_path_factory.mktemp("corpus"), (200, 20, 20))
    (root / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    return root


@pytest.fixture(scope="module")
def model(corpus: Path) -> lrr.LanguageModel:
    torch.manual_seed(0)
    lm = lrr.LanguageModel(TextCorpus(corpus).vocab_size, embedding_dim=8, hidden_size=8,
                           num_layers=1)
    lm.vocabulary = TextCorpus(corpus).vocab
    return lm


def _predict(model: lrr.LanguageModel, corpus: Path, writer: TextPredictionWriter,
             eval_batch_size: int = 2) -> list[str]:
    data = TextCorpus(corpus, eval_batch_size=eval_batch_size,
                      predict_file=corpus / "prompts.txt")
    L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
              callbacks=[writer]).predict(model, datamodule=data, return_predictions=False)
    return writer.output.read_text().splitlines()


def test_score_mode_writes_each_text_with_its_perplexity(model: lrr.LanguageModel, corpus: Path,
                                                         tmp_path: Path):
    lines = _predict(model, corpus, TextPredictionWriter(tmp_path / "scores.txt"))
    expected = [(pytest.approx(model.perplexity(p), abs=1e-6), p) for p in PROMPTS]
    assert [(float(line.split("\t")[0]), line.split("\t")[1]) for line in lines] == expected


def test_generate_mode_writes_the_continuation_of_prompt_i_with_seed_plus_i(
        model: lrr.LanguageModel, corpus: Path, tmp_path: Path):
    writer = TextPredictionWriter(tmp_path / "out" / "gen.txt", mode="generate", max_tokens=6,
                                  temperature=2.0, seed=10)
    lines = _predict(model, corpus, writer)
    assert lines == [model.generate(p, max_tokens=6, temperature=2.0, seed=10 + i)
                     for i, p in enumerate(PROMPTS)]


def test_generate_mode_output_does_not_depend_on_the_batch_size(
        model: lrr.LanguageModel, corpus: Path, tmp_path: Path):
    def run(batch: int) -> list[str]:
        writer = TextPredictionWriter(tmp_path / f"gen{batch}.txt", mode="generate",
                                      max_tokens=5, temperature=2.0)
        return _predict(model, corpus, writer, eval_batch_size=batch)
    assert run(1) == run(3)


def test_generate_mode_keeps_one_line_per_prompt_when_eos_is_not_a_stop(
        model: lrr.LanguageModel, corpus: Path, tmp_path: Path):
    writer = TextPredictionWriter(tmp_path / "gen.txt", mode="generate", max_tokens=30,
                                  temperature=3.0, stop_at_eos=False)
    assert len(_predict(model, corpus, writer)) == len(PROMPTS)


def test_each_run_overwrites_the_output(model: lrr.LanguageModel, corpus: Path,
                                        tmp_path: Path):
    writer = TextPredictionWriter(tmp_path / "scores.txt")
    _predict(model, corpus, writer)
    assert len(_predict(model, corpus, writer)) == len(PROMPTS)


def test_an_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mode must be one of"):
        TextPredictionWriter("out.txt", mode="sample")


def test_batches_of_token_windows_are_rejected(model: lrr.LanguageModel, tmp_path: Path):
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[TextPredictionWriter(tmp_path / "x.txt")])
    windows = torch.utils.data.DataLoader([torch.zeros(4, 2, dtype=torch.long)], batch_size=None)
    with pytest.raises(TypeError, match="must be lists of str"):
        trainer.predict(model, windows)


def test_a_model_without_a_text_api_is_rejected(corpus: Path, tmp_path: Path):
    classifier = lrr.SequenceClassifier(vocab_size=5, num_classes=2, embedding_dim=4,
                                        hidden_size=4)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[TextPredictionWriter(tmp_path / "x.txt", mode="generate")])
    with pytest.raises(TypeError, match=r"needs a model with a generate\(\) method"):
        trainer.predict(classifier, [[torch.zeros(1, 3, dtype=torch.long)]])


def test_each_rank_writes_its_own_file_under_data_parallelism():
    trainer = cast(Any, SimpleNamespace(world_size=2, global_rank=1))
    assert TextPredictionWriter("out/gen.txt").path(trainer) == Path("out/gen.txt.rank1")


def test_the_cli_predict_command_writes_generated_text(corpus: Path, tmp_path: Path):
    config = tmp_path / "lm.yaml"
    config.write_text(yaml.safe_dump({
        "seed_everything": 0,
        "trainer": {"max_steps": 3, "limit_val_batches": 1, "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "default_root_dir": str(tmp_path / "run")},
        "model": {"class_path": "lightning_rnn_reg.LanguageModel",
                  "init_args": {"embedding_dim": 8, "hidden_size": 8, "num_layers": 1}},
        "data": {"class_path": "lightning_rnn_reg.data.TextCorpus",
                 "init_args": {"data_dir": str(corpus), "batch_size": 4, "bptt": 10}}}))
    predict = tmp_path / "predict.yaml"
    predict.write_text(yaml.safe_dump({
        "data": {"init_args": {"predict_file": str(corpus / "prompts.txt")}},
        "trainer": {"callbacks": [{
            "class_path": "lightning_rnn_reg.callbacks.TextPredictionWriter",
            "init_args": {"output": str(tmp_path / "generated.txt"), "mode": "generate",
                          "max_tokens": 5, "seed": 0}}]}}))
    main(["fit", "--config", str(config)])
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    main(["predict", "--config", str(config), "--config", str(predict),
          "--ckpt_path", str(checkpoint)])
    loaded = lrr.LanguageModel.load_from_checkpoint(checkpoint)
    assert (tmp_path / "generated.txt").read_text().splitlines() == [
        loaded.generate(p, max_tokens=5, seed=i) for i, p in enumerate(PROMPTS)]
