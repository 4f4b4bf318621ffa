"""Under torch.autocast the layers run where nn.LSTM / nn.GRU run: the fused path takes the
autocast dtype as nn.LSTM does; the loop path runs its recurrence in the parameters' dtype."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightning_rnn_reg as lrr

PAIRS = {"LSTM": (lrr.LSTM, nn.LSTM), "GRU": (lrr.GRU, nn.GRU)}
LOOP_REGS = {"LSTM": [lrr.UpdateDropout(0.2), lrr.Zoneout(cell=0.1, hidden=0.1)],
             "GRU": [lrr.RecurrentDropout(0.2), lrr.Zoneout(hidden=0.1)]}


def _pair(kind: str, regs=(), path: str = "auto"):
    ours_cls, ref_cls = PAIRS[kind]
    ref = ref_cls(6, 8, 2, bidirectional=True)
    ours = ours_cls(6, 8, 2, bidirectional=True, regularizers=list(regs), path=path)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("kind", list(PAIRS))
def test_fused_path_under_bf16_autocast_matches_nn_module_under_autocast(kind):
    ours, ref = _pair(kind)
    x = torch.randn(7, 3, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(x)[0]
        ref_out = _nn_under_autocast(ref, x)
    assert out.dtype == ref_out.dtype
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(out.float(), ref(x)[0], atol=3e-2, rtol=3e-2)


def _nn_under_autocast(ref: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """nn.LSTM / nn.GRU's output under the current CPU autocast. Where torch cannot build
    oneDNN's bf16 LSTM primitive (CPUs without AVX-512 BF16), nn.LSTM with float32 input
    raises; the reference is then nn.LSTM on input and state in the autocast dtype, which is
    what autocast hands the primitive where it exists."""
    try:
        return ref(x)[0]
    except RuntimeError as error:
        if "primitive descriptor" not in str(error) or not isinstance(ref, nn.LSTM):
            raise
    state = torch.zeros(ref.num_layers * 2, x.shape[1], ref.hidden_size, dtype=torch.bfloat16)
    return ref(x.bfloat16(), (state, state.clone()))[0]


def test_fused_lstm_under_autocast_where_torch_lacks_the_bf16_primitive():
    """On every CPU, with or without AVX-512 BF16: float32 input under autocast runs, the
    outputs are in the autocast dtype (as nn.LSTM's where oneDNN has the primitive), and
    the gradients reach the float32 parameters and the initial state."""
    ours, ref = _pair("LSTM")
    x = torch.randn(7, 3, 6, requires_grad=True)
    h0 = torch.randn(4, 3, 8, requires_grad=True)
    c0 = torch.randn(4, 3, 8, requires_grad=True)
    for dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cpu", dtype=dtype):
            out, (h, c) = ours(x, (h0, c0))
        assert out.dtype == h.dtype == c.dtype == dtype
        expected, (h_ref, c_ref) = ref(x, (h0, c0))
        torch.testing.assert_close(out.float(), expected, atol=5e-2, rtol=5e-2)
        torch.testing.assert_close(c.float(), c_ref, atol=5e-2, rtol=5e-2)
        out.float().sum().backward()
        for tensor in (x, h0, c0, *ours.parameters()):
            assert tensor.grad is not None and tensor.grad.dtype == torch.float32
            assert torch.isfinite(tensor.grad).all()
            tensor.grad = None


@pytest.mark.parametrize("lengths", [[7, 4, 2], [5, 5, 5], [7, 7, 7]])
def test_padded_lstm_under_autocast_matches_nn_lstm_on_packed_input(lengths):
    ours, ref = _pair("LSTM")
    x = torch.randn(7, 3, 6)
    lengths = torch.tensor(lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(x, lengths=lengths)[0]
        try:
            ref_packed = ref(packed)[0]
        except RuntimeError as error:  # equal lengths: oneDNN, without its bf16 primitive
            assert "primitive descriptor" in str(error)
            state = torch.zeros(4, 3, 8, dtype=torch.bfloat16)
            packed = torch.nn.utils.rnn.pack_padded_sequence(x.bfloat16(), lengths)
            ref_packed = ref(packed, (state, state.clone()))[0]
        ref_out, _ = torch.nn.utils.rnn.pad_packed_sequence(ref_packed, total_length=7)
    assert out.dtype == ref_out.dtype
    torch.testing.assert_close(out, ref_out)


@pytest.mark.parametrize("kind", list(PAIRS))
def test_fused_path_accepts_autocast_dtype_input_as_nn_module_does(kind):
    ours, ref = _pair(kind)
    x = torch.randn(7, 3, 6).bfloat16()  # what layer 2 of a stack gets under autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref_out = ours(x)[0], ref(x)[0]
    torch.testing.assert_close(out.float(), ref_out.float())


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize("low_input", [False, True])
def test_loop_path_under_bf16_autocast_is_close_to_float32(kind, low_input):
    ours, ref = _pair(kind, path="loop")
    x = torch.randn(7, 3, 6)
    expected = ref(x)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, state = ours(x.bfloat16() if low_input else x)
    assert out.dtype == torch.float32  # the recurrence runs in the parameters' dtype
    torch.testing.assert_close(out, expected, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("kind", list(PAIRS))
def test_loop_regularizers_train_under_bf16_autocast(kind):
    ours, _ = _pair(kind, regs=LOOP_REGS[kind])
    assert ours.path == "loop"
    x = torch.randn(7, 3, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(x)[0]
        loss = out.float().square().mean()
    loss.backward()
    for name, p in ours.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p.grad).all(), name


def test_two_layer_language_model_runs_under_bf16_autocast_on_both_paths():
    for regs in ([lrr.LockedDropout(0.2, at="between"), lrr.WeightDrop(0.3)],
                 [lrr.UpdateDropout(0.2), lrr.LockedDropout(0.2, at="between")]):
        model = lrr.LanguageModel(40, embedding_dim=8, hidden_size=12, num_layers=2,
                                  regularizers=regs)
        tokens = torch.randint(0, 40, (6, 3))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, _ = model(tokens)
        logits.float().logsumexp(-1).mean().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_dtype_mismatch_outside_autocast_is_still_refused():
    layer = lrr.LSTM(6, 8)
    with pytest.raises(ValueError, match="dtype"):
        layer(torch.randn(4, 2, 6, dtype=torch.float64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", list(PAIRS))
def test_both_paths_under_cuda_autocast(kind, dtype):
    for path in ("fused", "loop"):
        ours, ref = (m.cuda() for m in _pair(kind, path=path))
        x = torch.randn(7, 3, 6, device="cuda")
        with torch.autocast("cuda", dtype=dtype):
            out = ours(x)[0]
        out.float().sum().backward()
        torch.testing.assert_close(out.float(), ref(x)[0], atol=3e-2, rtol=3e-2)
