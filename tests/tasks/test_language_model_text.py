"""LanguageModel on raw text: ``vocabulary``, ``perplexity``, ``generate``, text ``predict_step``,
with and without a data module, straight after ``load_from_checkpoint``."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TextCorpus, Vocabulary
from lightning_rnn_reg.data.language_modeling import text_to_tokens
from lightning_rnn_reg.tasks import language_model
from tests.tasks.conftest import write_pattern_corpus

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)

WORDS = ["<unk>", "<eos>", "the", "cat", "a", "dog", "sees", "likes", "fish", "milk"]
CHARS = ["<unk>", "<eos>", "_", "a", "c", "t", "d", "o", "g", "s"]


def _model(level: str = "word", itos: list[str] | None = None, **kw: Any) -> lrr.LanguageModel:
    """An untrained model (near-uniform next-token probabilities) with a vocabulary."""
    itos = itos or (WORDS if level == "word" else CHARS)
    args: dict[str, Any] = {"vocab_size": len(itos), "embedding_dim": 8, "hidden_size": 8,
                            "num_layers": 2, "level": level}
    args.update(kw)
    model = lrr.LanguageModel(**args)
    model.vocabulary = Vocabulary(itos)
    return model


def _by_hand(model: lrr.LanguageModel, tokens: list[str]) -> float:
    """Mean next-token cross-entropy of ``<eos> tokens`` from one pass of ``model(tokens)``."""
    ids = model.vocabulary.encode(["<eos>", *tokens])
    model.eval()
    with torch.no_grad():
        logits, _ = model(ids[:-1].unsqueeze(1))
    return float(F.cross_entropy(logits.squeeze(1), ids[1:]))


def _greedy_by_hand(model: lrr.LanguageModel, prompt: list[str], steps: int) -> list[str]:
    ids = model.vocabulary.encode(["<eos>", *prompt]).unsqueeze(1)
    out: list[str] = []
    model.eval()
    with torch.no_grad():
        logits, state = model(ids)
        for _ in range(steps):
            token = int(logits[-1, 0].argmax())
            out.append(model.vocabulary.itos[token])
            logits, state = model(torch.tensor([[token]]), state)
    return out


# ------------------------------------------------------------------------------ vocabulary
def test_vocabulary_raises_before_the_model_has_one():
    model = lrr.LanguageModel(10, embedding_dim=4, hidden_size=4, num_layers=1)
    with pytest.raises(RuntimeError, match="has no vocabulary"):
        _ = model.vocabulary


def test_vocabulary_setter_fills_vocabulary_state():
    model = _model()
    assert Vocabulary.from_state(model.vocabulary_state) == Vocabulary(WORDS)


def test_vocabulary_setter_rejects_a_vocabulary_of_another_size():
    model = _model()
    with pytest.raises(ValueError, match="vocab_size=10 but the vocabulary has 2 entries"):
        model.vocabulary = Vocabulary(["<unk>", "<eos>"])


def test_vocabulary_setter_rejects_what_is_not_a_vocabulary():
    model = _model()
    with pytest.raises(TypeError, match="must be a Vocabulary"):
        model.vocabulary = WORDS  # type: ignore[assignment]


def test_any_trainer_run_gives_a_model_without_vocabulary_the_data_vocabulary(
        pattern_corpus: Path, tmp_path: Path):
    data = TextCorpus(pattern_corpus, eval_batch_size=4, bptt=10)
    model = lrr.LanguageModel(data.vocab_size, embedding_dim=4, hidden_size=4, num_layers=1)
    L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
              default_root_dir=tmp_path, limit_val_batches=1).validate(model, data, verbose=False)
    assert model.vocabulary == data.vocab


# ------------------------------------------------------------------------------ perplexity
def test_perplexity_equals_exp_of_the_mean_cross_entropy_by_hand_at_word_level():
    model = _model()
    text = "the cat sees fish\na dog likes milk"
    expected = math.exp(_by_hand(model, text_to_tokens(text)))
    assert model.perplexity(text) == pytest.approx(expected, rel=1e-5)


def test_perplexity_is_bits_per_character_by_hand_at_char_level():
    model = _model("char")
    text = "a cat\na dog"
    expected = _by_hand(model, text_to_tokens(text, "char")) / math.log(2)
    assert model.perplexity(text) == pytest.approx(expected, rel=1e-5)


def test_perplexity_carries_the_state_across_windows(monkeypatch: pytest.MonkeyPatch):
    model = _model()
    text = "the cat sees fish a dog likes milk the dog"
    monkeypatch.setattr(language_model, "TEXT_WINDOW", 3)
    expected = math.exp(_by_hand(model, [*text.split(), "<eos>"]))
    assert model.perplexity(text) == pytest.approx(expected, rel=1e-5)


def test_perplexity_maps_unknown_words_to_unk():
    model = _model()
    assert model.perplexity("the zebra sees fish") == model.perplexity("the <unk> sees fish")


def test_perplexity_of_a_list_reads_the_texts_as_consecutive_lines():
    model = _model()
    assert model.perplexity(["the cat", "sees fish"]) == model.perplexity("the cat\nsees fish")


def test_perplexity_runs_in_eval_mode_without_gradients():
    model = _model(regularizers=[lrr.LockedDropout(0.5, at="output")])
    seen: list[tuple[bool, bool]] = []
    model.decoder.register_forward_hook(
        lambda module, args, out: seen.append((module.training, torch.is_grad_enabled())))
    model.perplexity("the cat sees fish")
    assert seen and all(state == (False, False) for state in seen)


@pytest.mark.parametrize("training", [True, False])
def test_perplexity_restores_the_train_or_eval_mode(training: bool):
    model = _model()
    model.train(training)
    model.perplexity("the cat")
    assert model.training is training


def _averaged(model: lrr.LanguageModel) -> dict[str, torch.Tensor]:
    model.eval_weights = {name: p.detach() + 0.05 for name, p in model.named_parameters()}
    return model.eval_weights


def test_perplexity_uses_the_averaged_nt_asgd_weights():
    model = _model(optimizer="nt_asgd")
    averages = {name: value.clone() for name, value in _averaged(model).items()}
    reference = _model(optimizer="nt_asgd")
    reference.load_state_dict(averages, strict=False)  # decoder.weight is tied: not listed
    assert model.perplexity("the cat sees fish") == pytest.approx(
        reference.perplexity("the cat sees fish"), rel=1e-6)


def test_perplexity_puts_the_live_nt_asgd_weights_back():
    model = _model(optimizer="nt_asgd")
    live = copy.deepcopy(model.state_dict())
    _averaged(model)
    model.perplexity("the cat sees fish")
    assert all(torch.equal(live[name], value) for name, value in model.state_dict().items())


@pytest.mark.parametrize(("texts", "error", "match"), [
    ([], ValueError, "no text given"),
    (["the cat", 3], TypeError, "item 1 is a int"),
])
def test_perplexity_rejects_bad_texts(texts: Any, error: type, match: str):
    with pytest.raises(error, match=match):
        _model().perplexity(texts)


def test_text_api_needs_eos_in_the_vocabulary():
    model = _model(itos=["<unk>", "the", "cat"])
    with pytest.raises(ValueError, match="no '<eos>' token"):
        model.perplexity("the cat")


# -------------------------------------------------------------------------------- generate
def test_generate_with_the_same_seed_gives_the_same_text():
    model = _model()
    texts = {model.generate("the cat", max_tokens=15, seed=3, stop_at_eos=False)
             for _ in range(2)}
    assert len(texts) == 1


def test_generate_with_different_seeds_gives_different_texts():
    model = _model()
    texts = {model.generate("the cat", max_tokens=15, seed=seed, stop_at_eos=False)
             for seed in range(4)}
    assert len(texts) == 4


def test_generate_at_temperature_zero_is_greedy_argmax_by_hand():
    model = _model()
    greedy = model.generate("the cat", max_tokens=6, temperature=0, stop_at_eos=False)
    assert greedy.split() == [t for t in _greedy_by_hand(model, ["the", "cat"], 6)
                              if t != "<eos>"]


def test_generate_with_top_k_1_equals_greedy():
    model = _model()
    assert model.generate("a dog", max_tokens=8, top_k=1, seed=5, stop_at_eos=False) == (
        model.generate("a dog", max_tokens=8, temperature=0, stop_at_eos=False))


def test_generate_samples_only_among_the_top_k_tokens():
    model = _model()
    with torch.no_grad():
        model.decoder.bias.copy_(torch.arange(len(WORDS), dtype=torch.float) * 10)  # milk, fish
    words = model.generate("the", max_tokens=30, top_k=2, temperature=50.0, seed=0).split()
    assert set(words) == {"fish", "milk"}


@pytest.mark.parametrize("seed", [0, None])
def test_generate_leaves_the_global_rng_untouched(seed: int | None):
    model = _model()
    before = torch.get_rng_state()
    model.generate("the cat", max_tokens=10, seed=seed)
    assert torch.equal(torch.get_rng_state(), before)


def _eos_likely(model: lrr.LanguageModel, bias: float) -> lrr.LanguageModel:
    with torch.no_grad():
        model.decoder.bias[model.vocabulary.stoi["<eos>"]] = bias
    return model


def test_generate_stops_before_the_first_eos():
    assert _eos_likely(_model(), 100.0).generate("the cat", temperature=0) == ""


def test_generate_writes_eos_as_a_newline_without_stop_at_eos():
    model = _eos_likely(_model(), 100.0)
    assert model.generate("the cat", max_tokens=3, temperature=0, stop_at_eos=False) == "\n\n\n"


def test_generate_returns_max_tokens_words_when_no_eos_is_drawn():
    model = _eos_likely(_model(), -100.0)
    assert len(model.generate("the", max_tokens=7, seed=0).split()) == 7


def _char_favouring(symbol: str) -> lrr.LanguageModel:
    model = _model("char")
    with torch.no_grad():
        model.decoder.bias[model.vocabulary.stoi[symbol]] = 100.0
    return model


def test_generate_concatenates_characters_at_char_level():
    assert _char_favouring("a").generate("cat", max_tokens=4, temperature=0) == "aaaa"


def test_generate_writes_the_char_level_word_boundary_as_a_space():
    assert _char_favouring("_").generate("cat", max_tokens=3, temperature=0) == "   "


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"temperature": -0.5}, ValueError, "temperature must be a finite number >= 0"),
    ({"temperature": math.nan}, ValueError, "temperature must be a finite number >= 0"),
    ({"top_k": 0}, ValueError, "top_k must be an integer >= 1"),
    ({"max_tokens": -1}, ValueError, "max_tokens must be an integer >= 0"),
    ({"prompt": ["the"]}, TypeError, "prompt must be a str"),
])
def test_generate_rejects_bad_arguments(kwargs: dict[str, Any], error: type, match: str):
    args = {"prompt": "the", **kwargs}
    with pytest.raises(error, match=match):
        _model().generate(**args)


# ------------------------------------------------------------------------- predict_step
def test_predict_step_scores_each_text_of_a_batch_on_its_own():
    model = _model()
    assert model.predict_step(["the cat", "a dog"], 0) == [model.perplexity("the cat"),
                                                           model.perplexity("a dog")]


# ------------------------------------------- a fitted model, loaded with no data module
@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[lrr.LanguageModel, Path]:
    """A tiny model fitted for a few steps on the pattern corpus, and its checkpoint."""
    root = write_pattern_corpus(tmp_path_factory.mktemp("corpus"), (300, 40, 40))
    L.seed_everything(0)
    data = TextCorpus(root, batch_size=8, eval_batch_size=4, bptt=10)
    model = lrr.LanguageModel(data.vocab_size, embedding_dim=16, hidden_size=16, num_layers=1,
                              lr=5.0)
    trainer = L.Trainer(max_steps=30, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False,
                        num_sanity_val_steps=0, limit_val_batches=1, default_root_dir=root)
    trainer.fit(model, datamodule=data)
    path = root / "lm.ckpt"
    trainer.save_checkpoint(path)
    return model, path


def test_loaded_model_scores_text_as_the_trained_one(fitted: tuple[lrr.LanguageModel, Path]):
    model, path = fitted
    loaded = lrr.LanguageModel.load_from_checkpoint(path)
    assert loaded.perplexity("the cat sees fish") == pytest.approx(
        model.perplexity("the cat sees fish"), rel=1e-6)


def test_loaded_model_generates_as_the_trained_one(fitted: tuple[lrr.LanguageModel, Path]):
    model, path = fitted
    loaded = lrr.LanguageModel.load_from_checkpoint(path)
    assert loaded.generate("the cat", seed=1) == model.generate("the cat", seed=1)


def test_fitted_model_scores_a_grammatical_sentence_better(
        fitted: tuple[lrr.LanguageModel, Path]):
    loaded = lrr.LanguageModel.load_from_checkpoint(fitted[1])
    assert loaded.perplexity("the cat sees fish") < loaded.perplexity("fish the sees cat")
