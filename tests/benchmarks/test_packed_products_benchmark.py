"""``benchmarks/packed_products.py`` runs end to end on tiny shapes: the product table and
the ``--layer`` table, tied and per-gate (the figures themselves are measured by hand)."""

from __future__ import annotations

import pytest
import torch

from lightning_rnn_reg.rnn.packed_products import packed_products_available

pytestmark = pytest.mark.skipif(not packed_products_available(),
                                reason="oneDNN packed linear ops not available in this torch")


@pytest.mark.parametrize("extra", [[], ["--layer"], ["--layer", "--per-gate"]],
                         ids=["products", "layer", "layer-per-gate"])
def test_tables_have_a_row_per_shape(bench_module, extra, tmp_path, capsys):
    bench = bench_module("packed_products")
    out = tmp_path / "table.md"
    threads = torch.get_num_threads()
    try:
        code = bench.main(["--hidden", "8", "16", "--batch", "2", "--calls", "2", "--repeats", "1",
                           "--steps", "3", "--threads", "1", "--markdown", str(out), *extra])
    finally:
        torch.set_num_threads(threads)  # the script sets the thread count for the process
    assert code == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # header + H 8 + H 16
    assert ("packing on / nn.LSTM" in rows[0]) == bool(extra)
