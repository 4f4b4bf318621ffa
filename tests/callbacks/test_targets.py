"""Target selection: by class, by name, by default all; rate suffix; no match is an error."""

from __future__ import annotations

import pytest
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import (
    CurriculumDropout,
    RateSchedule,
    named_regularizers,
    select_regularizers,
)


def _model() -> lrr.LanguageModel:
    regs = [lrr.EmbeddingDropout(0.1), lrr.LockedDropout(0.3, at="input"),
            lrr.Zoneout(cell=0.5, hidden=0.05), lrr.WeightDrop(0.2),
            lrr.LockedDropout(0.4, at="output"), lrr.ActivationRegularization(2.0)]
    return lrr.LanguageModel(20, embedding_dim=4, hidden_size=4, num_layers=2, regularizers=regs)


def _selected(targets) -> dict[str, tuple[str, ...]]:
    return {name: rates for name, (_, rates) in select_regularizers(_model(), targets).items()}


def test_names_are_the_task_log_names_and_shared_layer_regularizers_count_once():
    model = _model()
    named = named_regularizers(model)
    assert list(named) == ["0_EmbeddingDropout", "1_LockedDropout", "2_Zoneout", "3_WeightDrop",
                           "4_LockedDropout", "5_ActivationRegularization"]
    assert named["2_Zoneout"] is model.rnns[0].regularizers[0] is model.rnns[1].regularizers[0]


def test_other_regularizers_are_named_by_module_path():
    module = torch.nn.Module()
    module.rnn = lrr.LSTM(3, 4, regularizers=[lrr.RecurrentDropout(0.2)])
    assert list(named_regularizers(module)) == ["rnn.regularizers.0"]


def test_default_targets_are_every_regularizer_with_every_rate():
    selected = _selected(None)
    assert list(selected) == list(named_regularizers(_model()))
    assert selected["2_Zoneout"] == ("cell", "hidden")
    assert selected["5_ActivationRegularization"] == ("alpha",)


def test_select_by_class_includes_every_instance():
    assert _selected([lrr.LockedDropout]) == {"1_LockedDropout": ("p",), "4_LockedDropout": ("p",)}
    assert _selected(lrr.Zoneout) == {"2_Zoneout": ("cell", "hidden")}


def test_select_by_class_name_dotted_path_or_family():
    assert list(_selected("LockedDropout")) == ["1_LockedDropout", "4_LockedDropout"]
    assert list(_selected("lightning_rnn_reg.WeightDrop")) == ["3_WeightDrop"]
    assert list(_selected(["ActivationDropoutBase"])) == ["1_LockedDropout", "4_LockedDropout"]


def test_select_by_name_or_module_path():
    assert _selected(["4_LockedDropout", "0_EmbeddingDropout"]) == {
        "4_LockedDropout": ("p",), "0_EmbeddingDropout": ("p",)}
    assert _selected("regularizers.3") == {"3_WeightDrop": ("p",)}


def test_select_one_rate_with_a_suffix():
    assert _selected("Zoneout:cell") == {"2_Zoneout": ("cell",)}
    assert _selected(["2_Zoneout:hidden", "Zoneout:cell"]) == {"2_Zoneout": ("hidden", "cell")}


@pytest.mark.parametrize("target", ["Nope", "RecurrentDropout", "7_Dropout", "Zoneout:p",
                                    lrr.CellDropout])
def test_a_target_that_matches_nothing_raises_naming_it(target):
    with pytest.raises(ValueError, match="matches no regularizer") as info:
        select_regularizers(_model(), ["LockedDropout", target])
    assert repr(target) in str(info.value)


def test_a_module_without_regularizers_raises():
    with pytest.raises(ValueError, match="no lightning_rnn_reg Regularizer"):
        select_regularizers(lrr.LanguageModel(20, 4, 4, 1), None)


def test_fit_with_an_unmatched_target_raises_before_training(make_lm, quiet_trainer, tmp_path):
    model, data = make_lm([lrr.LockedDropout(0.3, at="output")])
    trainer = quiet_trainer(tmp_path, [CurriculumDropout(0.1, targets="Zoneout")], max_steps=2)
    with pytest.raises(ValueError, match="'Zoneout' matches no regularizer"):
        trainer.fit(model, datamodule=data)
    assert trainer.global_step == 0


def test_two_schedules_on_one_rate_raise(make_lm, quiet_trainer, tmp_path):
    model, data = make_lm([lrr.LockedDropout(0.3, at="output"), lrr.WeightDrop(0.2)])
    callbacks = [CurriculumDropout(0.1), RateSchedule("linear", "WeightDrop", steps=3)]
    with pytest.raises(ValueError, match="two rate schedules target 1_WeightDrop:p"):
        quiet_trainer(tmp_path, callbacks, max_steps=2).fit(model, datamodule=data)
