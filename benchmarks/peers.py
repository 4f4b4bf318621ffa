"""Speed of our regularized LSTMs against peer libraries: fastai, Keras 3 and flair.

Every library runs the same model: token ids -> embedding (E) -> stacked LSTM layers ->
``mean(out ** 2)``, one forward+backward per timing, on CPU with ``--threads`` threads:

- ``small`` / ``medium``: the shapes of ``benchmarks/speed.py`` (Zaremba et al. 2014: 2 x 200 and
  2 x 650, batch 20, 35 steps, 10k vocabulary);
- ``awd``: AWD-LSTM sized (Merity et al. 2017): embedding 400, 3 layers of 1150, 1150, 400
  units (the last one the embedding size, as with tied weights), batch 20 (``--awd-batch``),
  one 70-step window.

Configurations, one process per library ("group"):

- ``nn.LSTM``: bare ``nn.LSTM`` layers, no regularizer; the baseline of every ratio.
- ``ours``: ``lightning_rnn_reg.LanguageModel.encode`` with the AWD set of speed.py (locked
  input 0.4 / between 0.3 / output 0.4, embedding 0.1, WeightDrop 0.5: fused kernel), the
  locked dropouts alone (fused), and on the loop path UpdateDropout 0.25, Zoneout (c 0.25,
  h 0.05), Gal's RecurrentDropout 0.25, and Gal's whole variational set (locked input and
  between 0.25 + RecurrentDropout 0.25).
- ``fastai``: ``fastai.text.models.awdlstm.AWD_LSTM`` (EmbeddingDropout 0.1, RNNDropout
  0.4 / 0.3, WeightDropout 0.5) + ``RNNDropout(0.4)`` on its output: the AWD set.
- ``flair``: ``flair.nn.LockedDropout`` 0.4 / 0.3 / 0.4 around ``nn.LSTM`` layers.
- ``keras-tf``, ``keras-torch``: Keras 3 ``LSTM(dropout=0.25, recurrent_dropout=0.25)``
  layers (Gal's variational LSTM; Keras draws one recurrent mask per gate), and plain
  ``LSTM`` layers, on the TensorFlow backend (the gradient step in a ``tf.function``) or the
  PyTorch backend (eager).

Timing: the driver runs ``--rounds`` rounds; in each it launches one fresh process per group,
one after another (A B C ... A B C ...), so drift of a shared machine hits every library alike.
Inside a process, its configurations run round-robin: ``--warmup`` untimed rounds, then the
median of ``--repeats`` timed ones. A configuration's time is the median over rounds of these
per-process medians; its ratio to bare ``nn.LSTM`` (or to its counterpart in ``ours``) is the
median over rounds of the ratio of the two processes of the same round, with min-max over
rounds beside it. A group whose library is not installed is skipped with a line saying so.
Threads: ``torch.set_num_threads(--threads)`` (and ``OMP_NUM_THREADS``) in every process;
TensorFlow gets ``--threads`` intra-op threads and one inter-op thread. Bare ``nn.LSTM`` is one
single-layer ``nn.LSTM`` per layer (the layers of the AWD shape differ in size).

Peers are installed with the ``bench`` extra, best in a separate virtualenv (see
``benchmarks/RESULTS.md``). Usage::

    python benchmarks/peers.py                              # all shapes and groups
    python benchmarks/peers.py --quick                      # smoke test: small shape, few repeats
    python benchmarks/peers.py --shapes awd --rounds 5 --markdown peers.md --json peers.json
    python benchmarks/peers.py --from-json peers.json --markdown peers.md --plot peers.png
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

BARE = "bare nn.LSTM"
AWD_SET = "Locked + Embedding + WeightDrop (fused)"  # a configuration of speed.py
LOCKED_ONLY = "Locked 0.4 / 0.3 / 0.4 only (fused)"
GAL_VARIATIONAL = "Gal: locked in + between 0.25, RecurrentDropout 0.25 (loop)"
#: Configurations of speed.py that ``ours`` times as they are.
SPEED_CONFIGS = (
    AWD_SET,
    "UpdateDropout 0.25 per-step (loop)",
    "Zoneout c 0.25 h 0.05 (loop)",
    "RecurrentDropout 0.25 (loop)",
)
KERAS_GAL = "Keras LSTM dropout 0.25 + recurrent_dropout 0.25 ({})"
KERAS_PLAIN = "Keras LSTM, no dropout ({})"


# ------------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Shape:
    """One benchmark shape: embedding -> ``layers`` LSTM layers, the last ``embedding`` wide."""

    name: str
    embedding: int
    hidden: int
    layers: int
    batch: int
    steps: int
    vocab: int

    def sizes(self) -> list[int]:
        """Output size of each layer (AWD-LSTM: the last equals the embedding size)."""
        return [self.hidden] * (self.layers - 1) + [self.embedding]

    def describe(self) -> str:
        layers = " -> ".join(str(size) for size in self.sizes())
        return (f"{self.name}: embedding {self.embedding} -> {layers}, batch {self.batch}, "
                f"{self.steps} steps, vocabulary {self.vocab}")


def shapes(awd_batch: int = 20) -> dict[str, Shape]:
    """The shapes by name: speed.py's small and medium, and the AWD-LSTM shape."""
    from speed import BATCH, SHAPES, VOCAB

    table = {name: Shape(name, s.layers[0], s.layers[0], len(s.layers), BATCH, s.steps, VOCAB)
             for name, s in SHAPES.items() if s.stacked}
    table["awd"] = Shape("awd", 400, 1150, 3, awd_batch, 70, VOCAB)
    return table


# ------------------------------------------------------------------------------- groups
@dataclass(frozen=True)
class Group:
    """One library, timed in its own process.

    ``counterparts`` maps each of its configurations to the configuration of ``ours`` (or
    ``bare nn.LSTM``) that does the same regularization.
    """

    name: str
    requires: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    counterparts: dict[str, str] = field(default_factory=dict)


GROUPS: dict[str, Group] = {
    group.name: group
    for group in (
        Group("nn.LSTM", ("torch",)),
        Group("ours", ("torch", "lightning_rnn_reg")),
        Group("fastai", ("torch", "fastai"), counterparts={"fastai AWD_LSTM": AWD_SET}),
        Group("flair", ("torch", "flair"), env={"USE_TF": "0"},
              counterparts={"flair LockedDropout + nn.LSTM": LOCKED_ONLY}),
        *(Group(f"keras-{short}", ("keras", backend), env={"KERAS_BACKEND": backend},
                counterparts={KERAS_GAL.format(backend): GAL_VARIATIONAL,
                              KERAS_PLAIN.format(backend): BARE})
          for short, backend in (("tf", "tensorflow"), ("torch", "torch"))),
    )
}


def skip_reason(requires: Sequence[str]) -> str | None:
    """Why a group cannot run here (a module it needs is not installed), or ``None``."""
    for module in requires:
        if importlib.util.find_spec(module) is None:
            return f"not installed (no module {module!r} in {sys.executable})"
    return None


# ----------------------------------------------------------------------- child: timing
#: A configuration in a child process: ``(reset, step)``; ``step`` is the timed
#: forward+backward, ``reset`` the untimed preparation before it (zeroing gradients).
Case = tuple[Callable[[], None], Callable[[], Any]]


def _ids(shape: Shape) -> Any:
    """The token ids, time-major ``(steps, batch)``, the same in every library."""
    import numpy as np

    return np.random.default_rng(0).integers(0, shape.vocab, (shape.steps, shape.batch))


def time_cases(cases: dict[str, Case], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of every timed step of every case, round-robin over the cases."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for index in range(warmup + repeats):
        for name, (reset, step) in cases.items():
            reset()
            start = time.perf_counter()
            step()
            elapsed = time.perf_counter() - start
            if index >= warmup:
                times[name].append(elapsed)
    return times


def _torch_case(model: Any, loss: Callable[[], Any]) -> Case:
    model.train()

    def step() -> None:
        loss().backward()

    return (lambda: model.zero_grad(set_to_none=True)), step


def _torch_ids(shape: Shape, batch_first: bool = False) -> Any:
    import torch

    ids = torch.from_numpy(_ids(shape))
    return ids.t().contiguous() if batch_first else ids


def _lstm_stack(shape: Shape, between: Callable[[int], Any] | None = None) -> Any:
    """``nn.Embedding`` and ``nn.LSTM`` layers (time-major); ``between(i)`` is an optional
    module applied to the input of layer ``i`` (``i == layers``: to the output)."""
    from torch import nn

    class _Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(shape.vocab, shape.embedding)
            inputs = [shape.embedding, *shape.sizes()[:-1]]
            self.rnns = nn.ModuleList(nn.LSTM(i, h) for i, h in zip(inputs, shape.sizes(),
                                                                    strict=True))
            drops = [between(i) if between else nn.Identity() for i in range(shape.layers + 1)]
            self.drops = nn.ModuleList(drops)

        def forward(self, ids: Any) -> Any:
            x = self.embedding(ids)
            for drop, rnn in zip(self.drops, self.rnns, strict=False):
                x, _ = rnn(drop(x))
            return self.drops[-1](x).pow(2).mean()

    return _Stack()


def _cases_bare(shape: Shape) -> dict[str, Case]:
    model, ids = _lstm_stack(shape), _torch_ids(shape)
    return {BARE: _torch_case(model, lambda: model(ids))}


def _our_configs() -> dict[str, Callable[[], list[Any]]]:
    """Our configurations: regularizer lists for ``LanguageModel``."""
    from speed import CONFIGS

    import lightning_rnn_reg as lrr

    def speed_config(name: str) -> Callable[[], list[Any]]:
        def build() -> list[Any]:
            regs, edrop = CONFIGS[name]()
            return [*regs, lrr.EmbeddingDropout(edrop)] if edrop > 0 else list(regs)
        return build

    configs = {name: speed_config(name) for name in SPEED_CONFIGS}
    configs[LOCKED_ONLY] = lambda: [lrr.LockedDropout(0.4, at="input"),
                                    lrr.LockedDropout(0.3, at="between"),
                                    lrr.LockedDropout(0.4, at="output")]
    configs[GAL_VARIATIONAL] = lambda: [lrr.LockedDropout(0.25, at="input"),
                                        lrr.LockedDropout(0.25, at="between"),
                                        lrr.RecurrentDropout(0.25)]
    return configs


def _cases_ours(shape: Shape) -> dict[str, Case]:
    import lightning_rnn_reg as lrr

    ids = _torch_ids(shape)
    cases = {}
    for name, build in _our_configs().items():
        model = lrr.LanguageModel(shape.vocab, shape.embedding, shape.hidden, shape.layers,
                                  tie_weights=True, regularizers=build())

        def loss(model: Any = model) -> Any:
            return model.encode(ids)[1].pow(2).mean()

        cases[name] = _torch_case(model, loss)
    return cases


def _cases_fastai(shape: Shape) -> dict[str, Case]:
    from fastai.text.models.awdlstm import AWD_LSTM, RNNDropout
    from torch import nn

    encoder = AWD_LSTM(shape.vocab, shape.embedding, shape.hidden, shape.layers,
                       hidden_p=0.3, input_p=0.4, embed_p=0.1, weight_p=0.5)
    model = nn.Sequential(encoder, RNNDropout(0.4))
    ids = _torch_ids(shape, batch_first=True)  # AWD_LSTM is batch-first
    return {"fastai AWD_LSTM": _torch_case(model, lambda: model(ids).pow(2).mean())}


def _cases_flair(shape: Shape) -> dict[str, Case]:
    from flair.nn import LockedDropout

    rates = [0.4] + [0.3] * (shape.layers - 1) + [0.4]
    model = _lstm_stack(shape, lambda i: LockedDropout(rates[i], batch_first=False))
    ids = _torch_ids(shape)
    return {"flair LockedDropout + nn.LSTM": _torch_case(model, lambda: model(ids))}


def _keras_model(shape: Shape, rate: float) -> Any:
    import keras

    inputs = keras.Input((shape.steps,), batch_size=shape.batch, dtype="int32")
    x = keras.layers.Embedding(shape.vocab, shape.embedding)(inputs)
    for size in shape.sizes():
        x = keras.layers.LSTM(size, return_sequences=True, dropout=rate,
                              recurrent_dropout=rate)(x)
    return keras.Model(inputs, x)


def _cases_keras(shape: Shape) -> dict[str, Case]:
    import keras

    keras.utils.set_random_seed(0)
    ids = _ids(shape).T.astype("int32")  # Keras RNNs are batch-first
    backend = keras.backend.backend()
    step = _keras_tf_step if backend == "tensorflow" else _keras_torch_step
    return {name.format(backend): step(_keras_model(shape, rate), ids)
            for name, rate in ((KERAS_GAL, 0.25), (KERAS_PLAIN, 0.0))}


def _keras_tf_step(model: Any, ids: Any) -> Case:
    import tensorflow as tf

    inputs = tf.constant(ids)

    @tf.function
    def gradients() -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(inputs, training=True)))
        return tape.gradient(loss, model.trainable_variables)

    return (lambda: None), gradients


def _keras_torch_step(model: Any, ids: Any) -> Case:
    import torch

    inputs = torch.from_numpy(ids)

    def reset() -> None:
        for variable in model.trainable_variables:
            variable.value.grad = None

    def step() -> None:
        model(inputs, training=True).pow(2).mean().backward()

    return reset, step


_BUILDERS: dict[str, Callable[[Shape], dict[str, Case]]] = {
    "nn.LSTM": _cases_bare,
    "ours": _cases_ours,
    "fastai": _cases_fastai,
    "flair": _cases_flair,
    "keras-tf": _cases_keras,
    "keras-torch": _cases_keras,
}


def _set_threads(threads: int, group: str) -> None:
    if group == "keras-tf":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    else:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)


def child(group: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Time every configuration of ``group`` in this process; the result as plain data."""
    reason = skip_reason(GROUPS[group].requires)
    if reason is not None:
        return {"skipped": reason}
    shape = Shape(**spec["shape"])
    _set_threads(spec["threads"], group)
    start = time.perf_counter()
    cases = _BUILDERS[group](shape)
    built = time.perf_counter() - start
    times = time_cases(cases, spec["repeats"], spec["warmup"])
    return {"build_s": built, "versions": _versions(group),
            "median_s": {name: statistics.median(values) for name, values in times.items()}}


def _versions(group: str) -> dict[str, str]:
    modules = {"fastai": "fastai", "flair": "flair", "keras-tf": "tensorflow"}
    names = ["keras"] if group.startswith("keras") else ["torch"]
    if group in modules:
        names.append(modules[group])
    return {name: getattr(sys.modules.get(name), "__version__", "?") for name in names}


# --------------------------------------------------------------------------- driver
Launch = Callable[[str, dict[str, Any]], dict[str, Any]]


def launch_process(python: str, timeout: float) -> Launch:
    """A launcher that runs one group in a fresh ``python`` process."""

    def launch(group: str, spec: dict[str, Any]) -> dict[str, Any]:
        env = {**os.environ, **GROUPS[group].env, "OMP_NUM_THREADS": str(spec["threads"]),
               "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": _pythonpath()}
        cmd = [python, str(Path(__file__).resolve()), "--child", group, "--spec",
               json.dumps(spec)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"skipped": f"no result within {timeout:.0f} s"}
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            return {"skipped": f"failed (exit {done.returncode}): {tail}"}
        return json.loads(lines[-1])

    return launch


def _pythonpath() -> str:
    """benchmarks/ first (for ``speed``), then whatever the caller had."""
    parts = [str(HERE), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(part for part in parts if part)


@dataclass
class ShapeRun:
    """Every round's per-process medians of one shape, and the groups that were skipped."""

    shape: Shape
    rounds: list[dict[str, float]] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)  # configuration -> group
    skipped: dict[str, str] = field(default_factory=dict)  # group -> reason
    versions: dict[str, dict[str, str]] = field(default_factory=dict)  # group -> versions


def run_shape(shape: Shape, groups: Sequence[str], rounds: int, spec: dict[str, Any],
              launch: Launch, skipped: dict[str, str], say: Callable[[str], None] = print
              ) -> ShapeRun:
    """Rounds of one process per group, in order; groups in ``skipped`` are left out and a
    group that reports a skip is added to it (with a line saying so)."""
    run = ShapeRun(shape, skipped=skipped)
    for index in range(rounds):
        medians: dict[str, float] = {}
        for group in groups:
            if group in skipped:
                continue
            result = launch(group, {**spec, "shape": asdict(shape)})
            if "skipped" in result:
                skipped[group] = result["skipped"]
                say(f"{group}: skipped: {result['skipped']}")
                continue
            run.versions[group] = result.get("versions", {})
            for name, seconds in result["median_s"].items():
                medians[name] = seconds
                run.groups[name] = group
        run.rounds.append(medians)
        say(f"{shape.name}: round {index + 1}/{rounds} done")
    return run


def _ratios(run: ShapeRun, name: str, reference: str) -> list[float]:
    return [medians[name] / medians[reference] for medians in run.rounds
            if name in medians and reference in medians]


def summarize(run: ShapeRun) -> dict[str, dict[str, Any]]:
    """Per configuration: median time over rounds, ratio to bare nn.LSTM and to its
    counterpart in ``ours`` (median and min-max over rounds)."""
    summary: dict[str, dict[str, Any]] = {}
    for name, group in run.groups.items():
        times = [medians[name] for medians in run.rounds if name in medians]
        entry: dict[str, Any] = {"group": group, "median_ms": statistics.median(times) * 1e3,
                                 "round_ms": [t * 1e3 for t in times]}
        for key, reference in (("to_bare", BARE),
                               ("to_counterpart", GROUPS[group].counterparts.get(name))):
            ratios = _ratios(run, name, reference) if reference else []
            if ratios:
                entry[key] = {"reference": reference, "median": statistics.median(ratios),
                              "min": min(ratios), "max": max(ratios)}
        summary[name] = entry
    return summary


# --------------------------------------------------------------------------- output
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1
                   ) -> str:
    """A markdown table: the first ``text_columns`` columns left-aligned, the rest (numbers)
    right-aligned. All table output goes through here (one place to swap the renderer)."""
    align = ["---"] * text_columns + ["---:"] * (len(headers) - text_columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ratio_text(ratio: dict[str, float] | None) -> str:
    if not ratio:
        return "-"
    return f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})"


def report(run: ShapeRun, summary: dict[str, dict[str, Any]], threads: int) -> str:
    """Markdown for one shape: every configuration, then each peer against its counterpart.
    ``run`` gives the shape, the number of rounds, the versions and the skip lines."""
    rows = [[name, entry["group"], f"{entry['median_ms']:.1f}", _ratio_text(entry.get("to_bare"))]
            for name, entry in summary.items()]
    plural = "s" if threads != 1 else ""
    parts = [f"### {run.shape.describe()} (CPU, {threads} thread{plural}, "
             f"{len(run.rounds)} rounds)",
             "", markdown_table(["configuration", "library", "median fwd+bwd (ms)",
                                 "ratio to bare nn.LSTM (min-max)"], rows, 2)]
    pairs = [[name, entry["to_counterpart"]["reference"], _ratio_text(entry["to_counterpart"])]
             for name, entry in summary.items() if "to_counterpart" in entry]
    if pairs:
        parts += ["", markdown_table(["peer configuration", "our counterpart",
                                      "time peer / time ours (min-max)"], pairs, 2)]
    versions = sorted({f"{name} {version}" for found in run.versions.values()
                       for name, version in found.items()})
    if versions:
        parts.append("\nVersions: " + ", ".join(versions) + ".")
    parts += [f"\n{group}: skipped: {reason}" for group, reason in run.skipped.items()]
    return "\n".join(parts)


def plot(results: dict[str, dict[str, Any]], path: str, threads: int) -> dict[str, Any]:
    """Bar chart of every configuration's ratio to bare ``nn.LSTM``, one bar per shape
    (through :func:`lightning_rnn_reg.report.bar_chart`, as speed.py and memory.py); a
    configuration missing from a shape (its library skipped) has no bar there. Returns
    what was drawn."""
    from lightning_rnn_reg.report import bar_chart

    names: list[str] = []
    for found in results.values():
        names += [name for name in found["configurations"] if name not in names]
    groups = {}
    for shape_name, found in results.items():
        shape = Shape(**found["shape"])
        label = f"{shape_name} ({' x '.join(str(n) for n in shape.sizes())})"
        configurations = found["configurations"]
        groups[label] = [configurations[name]["to_bare"]["median"]
                         if "to_bare" in configurations.get(name, {}) else float("nan")
                         for name in names]
    return bar_chart(names, groups, path, reference=1.0,
                     value_label="forward+backward time / bare nn.LSTM",
                     title=f"Peers, CPU {threads} threads")


def from_json(path: str) -> tuple[list[str], dict[str, Any]]:
    """The markdown tables of a ``--json`` file, rebuilt without timing anything."""
    saved = json.loads(Path(path).read_text())
    tables = []
    for found in saved["shapes"].values():
        configurations = found["configurations"]
        rounds = max((len(entry["round_ms"]) for entry in configurations.values()), default=0)
        run = ShapeRun(Shape(**found["shape"]), rounds=[{}] * rounds,
                       skipped=saved.get("skipped", {}), versions=found.get("versions", {}))
        tables.append(report(run, configurations, saved["settings"]["threads"]))
    return tables, saved


# ------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--quick`` is a smoke test (small shape, 2 rounds, 3 repeats)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["small", "medium", "awd"],
                        choices=["small", "medium", "awd"])
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), choices=list(GROUPS),
                        help="libraries to time (nn.LSTM is always the baseline)")
    parser.add_argument("--rounds", type=int, default=5, help="processes per group, interleaved")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per process first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--awd-batch", type=int, default=20)
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter of the group processes (e.g. the peers' virtualenv)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per process")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: small shape, 2 rounds of 3 repeats after 1 warm-up")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--json", help="also write every measurement to this JSON file")
    parser.add_argument("--plot", help="also draw the ratios to bare nn.LSTM as a PNG bar chart "
                        "(needs matplotlib: the report extra)")
    parser.add_argument("--from-json", help="rebuild the tables (and --plot) of a --json file "
                        "without timing anything")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.shapes, args.rounds, args.repeats, args.warmup = ["small"], 2, 3, 1
    if "nn.LSTM" not in args.groups:
        args.groups = ["nn.LSTM", *args.groups]
    return args


def main(argv: Sequence[str] | None = None, launch: Launch | None = None) -> dict[str, Any]:
    """Run the benchmark; returns what ``--json`` writes."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.spec))), flush=True)
        return {}
    if args.from_json:
        tables, saved = from_json(args.from_json)
        print("\n\n".join(tables), flush=True)
        if args.markdown:
            Path(args.markdown).write_text("\n\n".join(tables) + "\n")
        if args.plot:
            plot(saved["shapes"], args.plot, saved["settings"]["threads"])
        return saved
    launch = launch or launch_process(args.python, args.timeout)
    spec = {"threads": args.threads, "repeats": args.repeats, "warmup": args.warmup}
    table = shapes(args.awd_batch)
    skipped: dict[str, str] = {}
    tables, results = [], {}
    for name in args.shapes:
        run = run_shape(table[name], args.groups, args.rounds, spec, launch, skipped)
        summary = summarize(run)
        tables.append(report(run, summary, args.threads))
        results[name] = {"shape": asdict(run.shape), "configurations": summary,
                         "versions": run.versions}
        print(tables[-1] + "\n", flush=True)
    output = {"settings": {key: value for key, value in vars(args).items()
                           if key not in ("child", "spec")},
              "shapes": results, "skipped": skipped}
    if args.markdown:
        Path(args.markdown).write_text("\n\n".join(tables) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=2) + "\n")
    if args.plot:
        plot(results, args.plot, args.threads)
    return output


if __name__ == "__main__":
    main()
