"""SequenceTagger: shapes, padding invariance, constrained decoding, a real short fit,
checkpoints that tag raw text without data, and span F1 under 2-process DDP.

The DDP test runs ``ddp_spawn`` on 2 CPU processes (gloo). Only rank 0's results come back to
the test process, so each rank writes what it saw to ``<out_dir>/validate_rank<r>.pt``
(:class:`F1Recorder`); everything the workers need is module level and paths are strings.
"""

from __future__ import annotations

import copy
import itertools
import random
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data.conll import CoNLL2003
from lightning_rnn_reg.data.tagging import TaggedSentence, TaggingBatch, TaggingVocabulary
from lightning_rnn_reg.tag_schemes import allowed_transitions, invalid_positions, spans
from lightning_rnn_reg.tag_schemes import tags_from_spans as encode_spans
from lightning_rnn_reg.tasks.decoding import viterbi_decode
from lightning_rnn_reg.tasks.tagger import SequenceTagger

WORLD = 2
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ------------------------------------------------------------------ a synthetic corpus
FIRST, LAST = ["John", "Mary", "Peter", "Anna", "Paul", "Maria"], ["Smith", "Brown", "Jones"]
LOC = [["Paris"], ["London"], ["Berlin"], ["New", "York"], ["Tokyo"]]
ORG = [["Reuters"], ["Google"], ["United", "Nations"], ["Siemens"]]


def _sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    """Four patterns; the third puts two PER entities side by side (IOB1 ``B-PER``)."""
    def person():
        return [rng.choice(FIRST)] + ([rng.choice(LAST)] if rng.random() < 0.5 else []), "PER"

    pattern = rng.randrange(4)
    if pattern == 0:
        parts = [person(), (["visited"], None), (rng.choice(LOC), "LOC"), (["."], None)]
    elif pattern == 1:
        parts = [person(), (["works", "for"], None), (rng.choice(ORG), "ORG"), (["in"], None),
                 (rng.choice(LOC), "LOC"), (["."], None)]
    elif pattern == 2:
        parts = [(rng.choice(ORG), "ORG"), (["said"], None), person(), person(),
                 (["met", "."], None)]
    else:
        parts = [(["the", rng.choice(["market", "game"]), "was", rng.choice(["good", "bad"]),
                   "."], None)]
    tokens: list[str] = []
    entities = []
    for words, kind in parts:
        if kind is not None:
            entities.append((kind, len(tokens), len(tokens) + len(words)))
        tokens += words
    return tokens, encode_spans(entities, len(tokens), "IOB1")


def write_tagging_corpus(root: Path, sizes: tuple[int, int, int] = (300, 80, 40)) -> str:
    """train/valid/test.txt in CoNLL-2003's 4-column IOB1 format; returns the folder."""
    for seed, (name, n) in enumerate(zip(("train", "valid", "test"), sizes, strict=True)):
        rng = random.Random(seed)
        lines = ["-DOCSTART- -X- -X- O", ""]
        for _ in range(n):
            tokens, tags = _sentence(rng)
            lines += [f"{w} NNP I-NP {t}" for w, t in zip(tokens, tags, strict=True)] + [""]
        (root / f"{name}.txt").write_text("\n".join(lines))
    return str(root)


def _data(root: str, eval_batch_size: int = 8) -> CoNLL2003:
    return CoNLL2003(root, "train.txt", "valid.txt", "test.txt", lowercase=True,
                     char_vocab=True, batch_size=16, eval_batch_size=eval_batch_size)


def _model(data: CoNLL2003, **kw) -> SequenceTagger:
    torch.manual_seed(1234)
    args = {"embedding_dim": 16, "hidden_size": 16, "char_embedding_dim": 8,
            "char_hidden_size": 8, "use_caps": True, "lr": 0.01}
    args.update(kw)
    return SequenceTagger(data.vocab_size, data.num_tags, char_vocab_size=data.char_vocab_size,
                          **args)


def _trainer(**kw) -> L.Trainer:
    args = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": False,
            "enable_progress_bar": False, "enable_model_summary": False,
            "num_sanity_val_steps": 0}
    args.update(kw)
    return L.Trainer(**args)


SENTENCES = [["John", "Smith", "visited", "New", "York", "."],
             ["Reuters", "said", "Mary", "Anna", "met", "."], [], ["Tokyo"]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A few epochs on the synthetic corpus; F1 before and after, and a checkpoint."""
    root = tmp_path_factory.mktemp("tagging")
    data = _data(write_tagging_corpus(root))
    model = _model(data, regularizers=[lrr.LockedDropout(0.2, at="input")])
    trainer = _trainer(max_epochs=5)
    before = trainer.validate(model, datamodule=data, verbose=False)[0]["val/f1"]
    trainer.fit(model, datamodule=data)
    after = trainer.validate(model, datamodule=data, verbose=False)[0]["val/f1"]
    checkpoint = root / "tagger.ckpt"
    trainer.save_checkpoint(checkpoint)
    return SimpleNamespace(root=str(root), data=data, model=model, before=before, after=after,
                           checkpoint=checkpoint)


# ------------------------------------------------------------------------ the network
def _inputs(lengths: list[int], width: int, chars: int = 12, vocab: int = 30):
    batch = len(lengths)
    steps = max(lengths)
    tokens = torch.randint(2, vocab, (batch, steps))
    char_ids = torch.randint(1, chars, (batch, steps, width))
    char_ids[:, :, width // 2 + 1:] = 0  # words shorter than the width
    caps = torch.randint(0, 4, (batch, steps))
    for row, length in enumerate(lengths):
        tokens[row, length:], char_ids[row, length:], caps[row, length:] = 0, 0, 0
    return tokens, torch.tensor(lengths), char_ids, caps


def test_forward_gives_one_score_per_tag_and_token():
    model = SequenceTagger(30, 9, embedding_dim=8, hidden_size=6, num_layers=2,
                           char_vocab_size=12, char_embedding_dim=5, char_hidden_size=4,
                           use_caps=True, caps_dim=3)
    tokens, lengths, chars, caps = _inputs([5, 3], width=6)
    assert model(tokens, lengths, chars, caps).shape == (2, 5, 9)
    raw, dropped = model.encode(tokens, lengths, chars, caps)
    assert raw.shape == dropped.shape == (2, 5, 12)
    assert (raw[1, 3:] == 0).all()  # outputs at padding are zero
    plain = SequenceTagger(30, 9, embedding_dim=8, hidden_size=6)
    assert plain(tokens, lengths).shape == (2, 5, 9)
    with pytest.raises(ValueError, match="use chars"):
        model(tokens, lengths, None, caps)


REGULARIZED = [lrr.EmbeddingDropout(0.1), lrr.LockedDropout(0.3, at="input"),
               lrr.LockedDropout(0.3, at="between"), lrr.LockedDropout(0.3, at="output"),
               lrr.UpdateDropout(0.2), lrr.WeightDrop(0.3)]


@pytest.mark.parametrize("regularizers", [[], REGULARIZED], ids=["plain", "regularized"])
def test_padding_never_changes_the_scores_of_a_sentence(regularizers):
    model = SequenceTagger(30, 9, embedding_dim=8, hidden_size=6, num_layers=2,
                           char_vocab_size=12, char_embedding_dim=5, char_hidden_size=4,
                           use_caps=True, regularizers=copy.deepcopy(regularizers)).eval()
    tokens, lengths, chars, caps = _inputs([7, 3], width=9)
    alone = model(tokens[1:, :3], lengths[1:], chars[1:, :3, :5], caps[1:, :3])
    padded = model(tokens, lengths, chars, caps)
    torch.testing.assert_close(padded[1:, :3], alone, rtol=0, atol=1e-6)


def test_loss_is_the_mean_cross_entropy_over_real_tokens():
    model = SequenceTagger(30, 5, embedding_dim=8, hidden_size=6)
    tokens, lengths, _, caps = _inputs([4, 2], width=3)
    tags = torch.randint(0, 5, tokens.shape).masked_fill(tokens == 0, -100)
    loss, terms = model.compute_loss(TaggingBatch(tokens, lengths, tags, None, caps))
    scores = model(tokens, lengths)
    expected = F.cross_entropy(torch.cat([scores[0, :4], scores[1, :2]]),
                               torch.cat([tags[0, :4], tags[1, :2]]))
    torch.testing.assert_close(loss, expected)
    assert set(terms) == {"ce"}


def test_loss_side_regularizers_add_their_terms():
    model = SequenceTagger(30, 5, embedding_dim=8, hidden_size=6, regularizers=[
        lrr.ActivationRegularization(1.0), lrr.TemporalActivationRegularization(1.0),
        lrr.FraternalDropout(0.1), lrr.LockedDropout(0.5, at="output")])
    tokens, lengths, _, caps = _inputs([4, 2], width=3)
    tags = torch.randint(0, 5, tokens.shape).masked_fill(tokens == 0, -100)
    loss, terms = model.compute_loss(TaggingBatch(tokens, lengths, tags, None, caps))
    assert set(terms) == {"ce", "fraternal", "ar", "tar"}
    assert all(float(value.detach()) > 0 for value in terms.values())
    torch.testing.assert_close(loss, sum(terms.values()))


# ----------------------------------------------------------------------------- decoding
def _tag_names(types: tuple[str, ...]) -> list[str]:
    return ["O"] + [f"{p}-{kind}" for kind in types for p in "BIES"]


def test_viterbi_outputs_are_valid_iobes_for_every_length():
    names = _tag_names(("LOC", "MISC", "ORG", "PER"))
    start, transitions, end = allowed_transitions(names, "IOBES")
    scores = torch.randn(40, 12, len(names)).mul(3).log_softmax(-1)
    lengths = torch.randint(1, 13, (40,))
    paths = viterbi_decode(scores, lengths, start, transitions, end)
    greedy_invalid = 0
    for row, length in enumerate(lengths.tolist()):
        assert (paths[row, length:] == -100).all()
        assert invalid_positions([names[i] for i in paths[row, :length].tolist()], "IOBES") == []
        greedy = [names[i] for i in scores[row, :length].argmax(-1).tolist()]
        greedy_invalid += bool(invalid_positions(greedy, "IOBES"))
        alone = viterbi_decode(scores[row:row + 1, :length], lengths[row:row + 1], start,
                               transitions, end)
        assert torch.equal(alone[0], paths[row, :length])
    assert greedy_invalid > 20  # the constraint mattered


def test_viterbi_finds_the_best_valid_path_by_brute_force():
    names = _tag_names(("A", "B"))
    start, transitions, end = allowed_transitions(names, "IOBES")
    valid_paths = [path for path in itertools.product(range(len(names)), repeat=4)
                   if not invalid_positions([names[i] for i in path], "IOBES")]
    generator = torch.Generator().manual_seed(0)
    checked = 0
    while checked < 10:
        scores = torch.randn(1, 4, len(names), generator=generator).mul(2).log_softmax(-1)
        greedy = [names[i] for i in scores[0].argmax(-1).tolist()]
        if not invalid_positions(greedy, "IOBES"):
            continue  # only cases where greedy argmax is invalid
        total = [float(scores[0, range(4), list(path)].sum()) for path in valid_paths]
        best = valid_paths[max(range(len(total)), key=total.__getitem__)]
        decoded = viterbi_decode(scores, torch.tensor([4]), start, transitions, end)
        assert tuple(decoded[0].tolist()) == best
        checked += 1


def _vocabulary(types: tuple[str, ...] = ("LOC", "PER")) -> TaggingVocabulary:
    sentences = [TaggedSentence(["Paris", "John"], [f"S-{t}" for t in types])]
    return TaggingVocabulary.build(sentences, source_scheme="IOB1")


@pytest.mark.parametrize("decode", ["viterbi", "argmax"])
def test_model_decoding_is_always_valid(decode: str):
    vocabulary = _vocabulary()
    model = SequenceTagger(len(vocabulary.words), len(vocabulary.tag_names), decode=decode)
    model.set_vocabulary(vocabulary.to_state())
    scores = torch.randn(30, 8, len(vocabulary.tag_names)).mul(4)
    lengths = torch.randint(1, 9, (30,))
    ids = model.decode(scores, lengths)
    for row, length in enumerate(lengths.tolist()):
        tags = [vocabulary.tag_names[i] for i in ids[row, :length].tolist()]
        assert invalid_positions(tags, "IOBES") == []
    if decode == "argmax":  # the repair keeps conlleval's reading of the greedy tags
        for row, length in enumerate(lengths.tolist()):
            greedy = [vocabulary.tag_names[i] for i in scores[row, :length].argmax(-1).tolist()]
            decoded = [vocabulary.tag_names[i] for i in ids[row, :length].tolist()]
            assert spans(decoded) == spans(greedy)


def test_vocabulary_is_required_and_must_fit_the_sizes():
    vocabulary = _vocabulary()
    model = SequenceTagger(len(vocabulary.words), len(vocabulary.tag_names))
    with pytest.raises(RuntimeError, match="no tag set yet"):
        model.tag([["John"]])
    with pytest.raises(ValueError, match="num_tags=5 but the data's vocabulary gives 9"):
        SequenceTagger(len(vocabulary.words), 5).set_vocabulary(vocabulary.to_state())


def test_plateau_schedule_watches_val_f1_upwards():
    model = SequenceTagger(10, 5, lr_schedule="plateau", lr_decay=2.0, optimizer="sgd", lr=0.1)
    config = model.configure_optimizers()
    assert config["lr_scheduler"]["monitor"] == "val/f1"
    assert config["lr_scheduler"]["scheduler"].mode == "max"


# --------------------------------------------------------------------- training for real
def test_short_fit_clearly_improves_validation_f1(trained):
    assert trained.before < 0.3
    assert trained.after > 0.7
    assert trained.after > trained.before + 0.4


def test_checkpoint_tags_raw_text_without_data(trained):
    expected = trained.model.tag(SENTENCES)
    assert [len(tags) for tags in expected] == [6, 6, 0, 1]
    assert expected[0][:2] == ["I-PER", "I-PER"]  # IOB1, the data's declared scheme
    loaded = SequenceTagger.load_from_checkpoint(trained.checkpoint, map_location="cpu")
    assert loaded.tag(SENTENCES) == expected
    assert loaded.tag(SENTENCES, scheme="IOBES")[0][:2] == ["B-PER", "E-PER"]
    assert loaded.predict_step(SENTENCES, 0) == expected
    batch = loaded.vocabulary.batch(SENTENCES[:2])
    assert loaded.predict_step(batch, 0) == expected[:2]


# ------------------------------------------------------------------------------ DDP
class F1Recorder(L.Callback):
    """Saves this process's own span counts and the synced ``val/f1`` at teardown."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.local: list[list[int]] | None = None
        self.synced: float | None = None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        # callbacks run before Lightning computes the epoch's metrics: still local sums
        metric = pl_module.val_f1
        self.local = [metric.correct.tolist(), metric.predicted.tolist(), metric.gold.tolist()]

    def on_validation_end(self, trainer, pl_module) -> None:
        self.synced = float(trainer.callback_metrics["val/f1"])

    def teardown(self, trainer, pl_module, stage) -> None:
        record = {"rank": trainer.global_rank, "world_size": trainer.world_size,
                  "local": self.local, "synced": self.synced}
        torch.save(record, Path(self.out_dir) / f"validate_rank{trainer.global_rank}.pt")


def _f1(counts: list[list[int]]) -> float:
    correct, predicted, gold = (sum(row) for row in counts)
    return 2 * correct / (predicted + gold)


def test_ddp_span_f1_equals_the_single_process_value(tmp_path: Path):
    root = write_tagging_corpus(tmp_path)
    model = _model(_data(root))  # untrained: an F1 well below 1, so ranks differ
    out_dir = tmp_path / "ddp"
    out_dir.mkdir()
    ddp = _trainer(strategy="ddp_spawn", devices=WORLD, default_root_dir=str(out_dir),
                   callbacks=[F1Recorder(str(out_dir))])
    ddp_result = ddp.validate(copy.deepcopy(model), datamodule=_data(root), verbose=False)[0]
    records = [torch.load(out_dir / f"validate_rank{r}.pt", weights_only=True)
               for r in range(WORLD)]
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single = _trainer(callbacks=[F1Recorder(str(single_dir))])
    single_result = single.validate(model, datamodule=_data(root), verbose=False)[0]
    single_record = torch.load(single_dir / "validate_rank0.pt", weights_only=True)

    assert [(r["rank"], r["world_size"]) for r in records] == [(0, WORLD), (1, WORLD)]
    summed = [[a + b for a, b in zip(*rows, strict=True)]
              for rows in zip(*(r["local"] for r in records), strict=True)]
    assert summed == single_record["local"]  # each sentence on exactly one rank
    assert all(sum(r["local"][0]) > 0 and sum(r["local"][2]) > 0 for r in records)
    expected = _f1(single_record["local"])
    assert any(abs(_f1(r["local"]) - expected) > 1e-3 for r in records)  # sync not vacuous
    for record in records:
        assert record["synced"] == pytest.approx(expected, abs=1e-7)
    assert ddp_result["val/f1"] == pytest.approx(expected, abs=1e-7)
    assert single_result["val/f1"] == ddp_result["val/f1"]
    assert single_result["val/loss"] == pytest.approx(ddp_result["val/loss"], rel=1e-5)
