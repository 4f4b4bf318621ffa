"""NT-ASGD (Merity, Keskar & Socher 2017, AWD-LSTM): SGD until the validation loss stops
improving, then averaged SGD, evaluated with the average of the iterates.

Non-monotone trigger: with ``v_0 .. v_{k-1}`` the validation losses (``val/loss``) of the
earlier validations of the fit and ``n = nonmono``, validation ``k`` switches when

    ``k > n  and  v_k > min(v_0 .. v_{k-n-1})``

(worse than the best of more than ``n`` evaluations ago). From then on the optimizer is
``torch.optim.ASGD(params, lr, t0=0, lambd=0.0, weight_decay)`` (``lr`` and ``weight_decay``
of the optimizer it replaces), whose state ``ax`` is the running mean of the iterates;
validation, test and prediction run with that mean in place of the weights, which are put
back after. The switch is made once; sanity checks and stand-alone validations are not
watched.

The averages reach the task through its evaluation-weights slot (``eval_weights``, see
:class:`~lightning_rnn_reg.tasks.eval_weights.EvalWeights`), saved in its checkpoints, so a
model loaded alone evaluates, scores and generates with them. The callback's own state (the
switch, the loss history) is in ``checkpoint["callbacks"]``; the optimizer's (``ax``
included) is Lightning's: a resumed fit continues exactly.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import lightning as L
import torch
from torch import Tensor, nn
from typing_extensions import override

from lightning_rnn_reg.validation import check_positive_int

__all__ = ["NTASGD"]


@runtime_checkable
class EvaluatesWithWeights(Protocol):
    """A module with an evaluation-weights slot (every lightning-rnn-reg task)."""

    eval_weights: dict[str, Tensor]
    eval_weights_in_place: bool

    def use_eval_weights(self, on: bool) -> bool: ...  # pragma: no cover


class NTASGD(L.Callback):
    """Non-monotonically triggered averaged SGD (AWD-LSTM).

    Args:
        nonmono: the non-monotone interval ``n`` of the trigger (AWD-LSTM: 5).

    Example::

        model = lrr.LanguageModel(vocab_size, optimizer="sgd", lr=30.0)
        trainer = L.Trainer(callbacks=[lrr.callbacks.NTASGD(nonmono=5)])

    ``LanguageModel(optimizer="nt_asgd", nonmono=n)`` attaches ``NTASGD(n)`` itself.
    """

    def __init__(self, nonmono: int = 5) -> None:
        check_positive_int("NTASGD", "nonmono", nonmono)
        self.nonmono = nonmono
        self.averaging = False
        self.val_losses: list[float] = []

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(nonmono=self.nonmono)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"averaging": self.averaging, "val_losses": list(self.val_losses)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.averaging = bool(state_dict["averaging"])
        self.val_losses = [float(loss) for loss in state_dict["val_losses"]]

    @override
    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """A checkpoint from before NT-ASGD was a callback keeps its state in
        ``checkpoint["lrr"]`` (``averaging``, ``val_losses``)."""
        legacy = checkpoint.get("lrr", {})
        if self.state_key not in checkpoint.get("callbacks", {}) and "averaging" in legacy:
            self.load_state_dict({"averaging": legacy["averaging"],
                                  "val_losses": legacy.get("val_losses", [])})

    # ------------------------------------------------------------------------ fit
    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, EvaluatesWithWeights):
            raise TypeError(f"NTASGD needs a lightning-rnn-reg task (a module with "
                            f"eval_weights), got {type(pl_module).__name__}")

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Refuse a learning-rate scheduler (it would keep driving the replaced optimizer);
        after the switch (a resumed fit), put ASGD in place before Lightning restores its
        state."""
        if trainer.lr_scheduler_configs:
            raise ValueError("NTASGD replaces the optimizer when it switches to averaged SGD; "
                             "use no learning-rate scheduler (AWD-LSTM keeps lr constant)")
        if self.averaging:
            trainer.strategy.optimizers = [self._asgd(trainer, pl_module)]

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fill(trainer, pl_module)

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self._fill(trainer, pl_module)  # before the task writes its eval_weights

    @staticmethod
    def _asgd(trainer: L.Trainer, pl_module: nn.Module) -> torch.optim.Optimizer:
        group = trainer.optimizers[0].param_groups[0]
        return torch.optim.ASGD(pl_module.parameters(), lr=group["lr"], t0=0, lambd=0.0,
                                weight_decay=group.get("weight_decay", 0.0))

    def _fill(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Point the task's evaluation weights at ASGD's running averages (``ax``), if any."""
        task = pl_module
        if (not self.averaging or not isinstance(task, EvaluatesWithWeights)
                or task.eval_weights_in_place or not trainer.optimizers):
            return
        state = trainer.optimizers[0].state
        averages = {name: state[param]["ax"] for name, param in pl_module.named_parameters()
                    if "ax" in state.get(param, {})}
        if averages:
            task.eval_weights = averages

    # ----------------------------------------------------------------- evaluation
    @override
    def on_validation_epoch_start(self, trainer: L.Trainer,
                                  pl_module: L.LightningModule) -> None:
        """Put the averages in place for the evaluation (test and prediction likewise)."""
        self._fill(trainer, pl_module)
        if isinstance(pl_module, EvaluatesWithWeights):
            pl_module.use_eval_weights(True)

    @override
    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the live weights back (prediction likewise)."""
        if isinstance(pl_module, EvaluatesWithWeights):
            pl_module.use_eval_weights(False)

    on_test_epoch_start = on_predict_epoch_start = on_validation_epoch_start
    on_predict_epoch_end = on_test_epoch_end

    @override
    def on_validation_epoch_end(self, trainer: L.Trainer,
                                pl_module: L.LightningModule) -> None:
        """Put the live weights back, then apply the trigger to this validation's loss."""
        self.on_test_epoch_end(trainer, pl_module)
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return  # the trigger watches the validations of fit only
        logged = trainer.callback_metrics.get("val/loss")
        if logged is None:
            return
        loss, history, nonmono = float(logged), self.val_losses, self.nonmono
        if not self.averaging and len(history) > nonmono and loss > min(history[:-nonmono]):
            self.averaging = True
            trainer.strategy.optimizers = [self._asgd(trainer, pl_module)]
            pl_module.print(f"NT-ASGD: switching to averaged SGD at epoch "
                            f"{trainer.current_epoch}")
        history.append(loss)
