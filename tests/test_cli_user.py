"""The command line as a user meets it: your own LightningCLI and subclass, your own module
on ``--model``, checkpoints of another task, and configuration errors in a few lines."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import lightning as L
import pytest
import yaml
from lightning.pytorch.cli import LightningCLI

import lightning_rnn_reg as lrr
from lightning_rnn_reg.cli import RecurrentCLI, build_cli, link_data_sizes
from lightning_rnn_reg.data import TextCorpus
from tests.tasks.conftest import write_pattern_corpus

REPO = Path(__file__).resolve().parents[1]
TRAINER = ["--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
           "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


class ArgsKwargsLM(lrr.LanguageModel):
    """A user's subclass written with ``*args, **kwargs``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightning_rnn_reg", *args], cwd=cwd,
                          env=_environment(), capture_output=True, text=True, timeout=300)


def _lm_config(folder: Path, data: Path, regularizers: str = "[]", layers: int = 2,
               data_dir: bool = True) -> Path:
    text = f"""
trainer: {{logger: false, enable_checkpointing: false}}
model:
  class_path: lightning_rnn_reg.LanguageModel
  init_args: {{embedding_dim: 8, hidden_size: 8, num_layers: {layers},
               regularizers: {regularizers}}}
data:
  class_path: lightning_rnn_reg.data.{"TextCorpus" if data_dir else "PennTreebank"}
  init_args: {{{f"data_dir: {data}, " if data_dir else ""}batch_size: 4, bptt: 8}}
"""
    path = folder / "config.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "corpus").mkdir()
    return write_pattern_corpus(tmp_path / "corpus", sizes=(60, 20, 20))


# ------------------------------------------------------------ your own CLI and subclass
def test_recurrent_cli_with_a_fixed_model_class_links_the_vocabulary_size(corpus, tmp_path):
    cli = RecurrentCLI(ArgsKwargsLM, TextCorpus, run=False, args=[
        "--data.data_dir", str(corpus), "--data.batch_size", "4", "--data.bptt", "8",
        "--model.embedding_dim", "8", "--model.hidden_size", "8", "--model.num_layers", "1",
        "--trainer.logger", "false"])
    assert isinstance(cli.model, ArgsKwargsLM)
    assert cli.model.embedding.num_embeddings == cli.datamodule.vocab_size


def test_subclass_with_args_kwargs_fits_and_keeps_its_linked_sizes(corpus, tmp_path):
    cli = RecurrentCLI(ArgsKwargsLM, TextCorpus, args=[
        "fit", "--data.data_dir", str(corpus), "--data.batch_size", "4", "--data.bptt", "8",
        "--model.embedding_dim", "8", "--model.hidden_size", "8", "--model.num_layers", "1",
        "--trainer.default_root_dir", str(tmp_path), *TRAINER])
    assert cli.trainer.global_step == 2
    assert cli.model.hparams["vocab_size"] == cli.datamodule.vocab_size
    path = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    restored = ArgsKwargsLM.load_from_checkpoint(path)
    assert restored.embedding.num_embeddings == cli.datamodule.vocab_size


def test_plain_lightning_cli_gets_the_links_from_one_line(corpus):
    class MyCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            link_data_sizes(parser, ArgsKwargsLM)

    cli = MyCLI(ArgsKwargsLM, TextCorpus, run=False, args=[
        "--data.data_dir", str(corpus), "--data.batch_size", "4", "--data.bptt", "8",
        "--model.embedding_dim", "8", "--model.hidden_size", "8", "--model.num_layers", "1",
        "--trainer.logger", "false"])
    assert cli.model.embedding.num_embeddings == cli.datamodule.vocab_size


def test_hparams_yaml_lists_the_regularizers_with_their_rates(corpus, tmp_path):
    config = _lm_config(tmp_path, corpus, regularizers=(
        "[{class_path: lightning_rnn_reg.LockedDropout, init_args: {p: 0.3, at: between}}, "
        "{class_path: lightning_rnn_reg.UpdateDropout, init_args: {p: 0.2}}]"))
    build_cli(["fit", "--config", str(config), "--trainer.logger", "true",
               "--trainer.default_root_dir", str(tmp_path), *TRAINER])
    hparams = yaml.safe_load(next(tmp_path.rglob("hparams.yaml")).read_text())
    specs = {spec["class_path"].rpartition(".")[2]: spec["init_args"]
             for spec in hparams["regularizers"]}
    assert specs["LockedDropout"]["p"] == 0.3 and specs["LockedDropout"]["at"] == "between"
    assert specs["UpdateDropout"]["p"] == 0.2


def test_the_cli_causes_no_lightning_cli_warning(corpus, tmp_path):
    config = _lm_config(tmp_path, corpus)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_cli(["--config", str(config)], run=False)  # pytest's own argv is in sys.argv
    assert not [w for w in caught if "LightningCLI's args parameter" in str(w.message)]
    done = _cli("fit", "--config", str(config), "--print_config", cwd=tmp_path)
    assert done.returncode == 0 and "args parameter" not in done.stderr


# ----------------------------------------------------------------- your own module
MY_MODULE = "import lightning_rnn_reg as lrr\n\n\nclass MyModel(lrr.LanguageModel):\n    pass\n"


def test_model_from_a_module_in_the_working_directory_is_importable(corpus, tmp_path):
    (tmp_path / "my_module.py").write_text(MY_MODULE)
    config = _lm_config(tmp_path, corpus)
    done = _cli("fit", "--config", str(config), "--model", "my_module.MyModel",
                "--model.embedding_dim", "8", "--model.hidden_size", "8",
                "--model.num_layers", "1", *TRAINER, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]


def test_documented_example_subclass_runs_from_the_repository_root(tmp_path):
    done = _cli("fit", "--config", "examples/configs/quickstart.yaml", "--model",
                "examples.gru_language_model.GRULanguageModel", "--print_config", cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "class_path: examples.gru_language_model.GRULanguageModel" in done.stdout


def test_a_module_that_fails_to_import_is_named_with_its_reason(corpus, tmp_path):
    (tmp_path / "broken_module.py").write_text("import not_installed_package\n")
    config = _lm_config(tmp_path, corpus)
    done = _cli("fit", "--config", str(config), "--model", "broken_module.MyModel",
                cwd=tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "module 'broken_module' failed to import" in last
    assert "No module named 'not_installed_package'" in last


# ------------------------------------------------------------------- errors in brief
def _short(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 6, done.stderr
    assert "Traceback" not in done.stderr
    return lines


def test_misspelled_class_name_gives_a_short_did_you_mean(corpus, tmp_path):
    config = _lm_config(tmp_path, corpus, regularizers=(
        "[{class_path: lightning_rnn_reg.LockedDropot, init_args: {p: 0.3}}]"))
    lines = _short(_cli("fit", "--config", str(config), cwd=tmp_path))
    assert lines[-1].endswith("Did you mean 'LockedDropout'?")


def test_out_of_range_rate_gives_a_short_error(corpus, tmp_path):
    config = _lm_config(tmp_path, corpus, regularizers=(
        "[{class_path: lightning_rnn_reg.LockedDropout, init_args: {p: 1.5}}]"))
    lines = _short(_cli("fit", "--config", str(config), cwd=tmp_path))
    assert lines[-1] == "LockedDropout.p must be in [0, 1), got 1.5"


def test_regularizer_at_a_site_that_never_acts_gives_a_short_error(corpus, tmp_path):
    config = _lm_config(tmp_path, corpus, layers=1, regularizers=(
        "[{class_path: lightning_rnn_reg.LockedDropout, init_args: {p: 0.3, at: between}}]"))
    lines = _short(_cli("fit", "--config", str(config), cwd=tmp_path))
    assert "LockedDropout(at='between')" in lines[-1] and "num_layers=1" in lines[-1]


def test_missing_data_dir_gives_a_short_error(corpus, tmp_path):
    config = _lm_config(tmp_path, corpus, data_dir=False)
    env_free = {k: v for k, v in _environment().items() if k != "LRR_DATA"}
    done = subprocess.run([sys.executable, "-m", "lightning_rnn_reg", "fit", "--config",
                           str(config)], cwd=tmp_path, env=env_free, capture_output=True,
                          text=True, timeout=300)
    lines = _short(done)
    assert lines[-1].startswith("PennTreebank: pass data_dir, or set the LRR_DATA")


def test_debug_flag_shows_the_full_traceback(corpus, tmp_path):
    config = _lm_config(tmp_path, corpus, regularizers=(
        "[{class_path: lightning_rnn_reg.LockedDropout, init_args: {p: 1.5}}]"))
    done = _cli("fit", "--config", str(config), "--debug", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ValueError" in done.stderr


def test_checkpoint_of_another_task_is_refused_in_one_line(corpus, tmp_path):
    L.seed_everything(0)
    classifier = lrr.SequenceClassifier(20, 2, embedding_dim=4, hidden_size=4)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_steps=0)
    trainer.strategy.connect(classifier)
    other = tmp_path / "classifier.ckpt"
    trainer.save_checkpoint(other)
    config = _lm_config(tmp_path, corpus)
    lines = _short(_cli("test", "--config", str(config), "--ckpt_path", str(other),
                        cwd=tmp_path))
    assert "was saved by" in lines[-1] and "SequenceClassifier" in lines[-1]
    assert "LanguageModel" in lines[-1]


def test_fit_ends_with_a_one_line_summary_naming_metric_logs_and_report(corpus, tmp_path,
                                                                       capsys):
    config = _lm_config(tmp_path, corpus)
    build_cli(["fit", "--config", str(config), "--trainer.logger", "true",
               "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1",
               "--trainer.limit_train_batches", "2", *TRAINER[2:]])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    log_dir = tmp_path / "lightning_logs" / "version_0"
    assert line.startswith("fit done after 2 steps: val/ppl ")
    assert f"logs: {log_dir}" in line
    assert f"plots: lightning-rnn-reg report {log_dir} --out {log_dir}/report" in line


def test_quickstart_uses_a_gpu_where_there_is_one():
    config = yaml.safe_load((REPO / "examples" / "configs" / "quickstart.yaml").read_text())
    assert config["trainer"]["accelerator"] == "auto"
