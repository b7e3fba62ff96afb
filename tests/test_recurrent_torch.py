"""SimpleRNN, LSTM, GRU and Bidirectional against PyTorch's nn.RNN / nn.LSTM / nn.GRU with copied
weights: outputs and every gradient (input, kernel, recurrent kernel, biases).

Weight mapping (Keras -> torch): kernel (F, G U) -> weight_ih (G U, F) = kernel^T, recurrent_kernel
-> weight_hh = recurrent_kernel^T. LSTM: both use gate order i, f, c(g), o; Keras's single bias goes
to bias_ih and bias_hh is 0. GRU: torch orders the gates r, z, n and Keras z, r, h, so the blocks
are swapped; torch's GRU is Keras's reset_after form, bias (2, 3U) row 0 -> bias_ih, row 1 -> bias_hh.

Masks: for right-padded sequences Keras's masking equals torch's packed sequences: the last output
(return_sequences=False) is the state after each sequence's last real step (h_n), and with
zero_output_for_mask=True the padded outputs are zeros (pad_packed_sequence). Bidirectional with a
mask forces zero_output_for_mask and matches a packed bidirectional torch RNN.
"""
import zlib

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from signcore import _core, layers

pytestmark = pytest.mark.torch

N, T, F, U = 4, 7, 5, 6


def gate_blocks(kind):
    """Torch's gate blocks in Keras's block order (for the torch -> Keras reorder)."""
    return {"SimpleRNN": [0], "LSTM": [0, 1, 2, 3], "GRU": [1, 0, 2]}[kind]


def to_torch_layout(kind, a):
    """Reorder the last axis of a Keras (.., G U) array into torch's gate order."""
    blocks = np.split(a, len(gate_blocks(kind)), axis=-1)
    return np.concatenate([blocks[i] for i in gate_blocks(kind)], axis=-1)


def torch_module(kind, weights, *, bidirectional=False, nonlinearity="tanh"):
    cls = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind]
    kw = {"nonlinearity": nonlinearity} if kind == "SimpleRNN" else {}
    mod = cls(F, U, batch_first=True, bidirectional=bidirectional, **kw).double()
    sets = [weights[:3]] + ([weights[3:]] if bidirectional else [])
    with torch.no_grad():
        for suffix, (kernel, rec, bias) in zip(["", "_reverse"], sets):
            getattr(mod, "weight_ih_l0" + suffix).copy_(torch.from_numpy(to_torch_layout(kind, kernel).T.astype(np.float64)))
            getattr(mod, "weight_hh_l0" + suffix).copy_(torch.from_numpy(to_torch_layout(kind, rec).T.astype(np.float64)))
            if kind == "GRU":
                b_ih, b_hh = bias[0], bias[1]
            else:
                b_ih, b_hh = bias, np.zeros_like(bias)
            getattr(mod, "bias_ih_l0" + suffix).copy_(torch.from_numpy(to_torch_layout(kind, b_ih).astype(np.float64)))
            getattr(mod, "bias_hh_l0" + suffix).copy_(torch.from_numpy(to_torch_layout(kind, b_hh).astype(np.float64)))
    return mod


def torch_grads_as_keras(kind, mod, suffix=""):
    """[d kernel, d recurrent_kernel, d bias] in Keras layout from torch's .grad."""
    g = lambda name: getattr(mod, name + suffix).grad.numpy()  # noqa: E731
    inverse = np.argsort(gate_blocks(kind))

    def back(a):  # torch gate order -> Keras
        blocks = np.split(a, len(inverse), axis=-1)
        return np.concatenate([blocks[i] for i in inverse], axis=-1)

    dk, dr = back(g("weight_ih_l0").T), back(g("weight_hh_l0").T)
    if kind == "GRU":
        db = np.stack([back(g("bias_ih_l0")), back(g("bias_hh_l0"))])
    else:
        db = back(g("bias_ih_l0"))  # bias_hh is 0 and gets the same gradient
    return [dk, dr, db]


def signcore_run(layer, x, dy, mask=None):
    h = _core.LayerHarness(layer, [[T, F]])
    rng = np.random.default_rng(zlib.crc32(layer.name.encode()))
    h.set_param_values(rng.normal(scale=0.4, size=h.param_values().size).astype(np.float32))
    y = h.forward([x], mask=mask)
    dx, = h.backward(dy.astype(np.float32))
    flat = h.param_grads()
    grads = [flat[off:off + size].reshape(shape) for _, shape, _, off, size in h.weights]
    return y, dx, grads, layer.get_weights()


def assert_close(a, b, what, tol=2e-5):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("kind,nonlinearity", [("SimpleRNN", "tanh"), ("SimpleRNN", "relu"),
                                               ("LSTM", "tanh"), ("GRU", "tanh")])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_torch(kind, nonlinearity, return_sequences, go_backwards):
    rng = np.random.default_rng(zlib.crc32(f"{kind}{nonlinearity}{return_sequences}{go_backwards}".encode()))
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    dy = rng.normal(size=(N, T, U) if return_sequences else (N, U))
    kw = {"activation": nonlinearity} if kind == "SimpleRNN" else {}
    layer = getattr(layers, kind)(U, return_sequences=return_sequences, go_backwards=go_backwards, **kw)
    y, dx, grads, weights = signcore_run(layer, x, dy)

    mod = torch_module(kind, weights, nonlinearity=nonlinearity)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    # go_backwards: Keras processes x reversed in time and returns the outputs in that order.
    out, _ = mod(tx.flip(1) if go_backwards else tx)
    ty = out if return_sequences else out[:, -1]
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty.detach().numpy(), "forward")
    assert_close(dx, tx.grad.numpy(), "dL/dx")
    for name, a, b in zip(["kernel", "recurrent_kernel", "bias"], grads, torch_grads_as_keras(kind, mod)):
        assert_close(a, b, f"dL/d{name}", tol=1e-4)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_right_padding_mask_matches_packed_sequences(kind, return_sequences):
    rng = np.random.default_rng(zlib.crc32(f"packed{kind}{return_sequences}".encode()))
    lengths = np.array([7, 3, 5, 1])
    mask = np.arange(T)[None, :] < lengths[:, None]
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    x[~mask] = rng.normal(scale=5, size=x[~mask].shape)  # padding values must not matter
    dy = rng.normal(size=(N, T, U) if return_sequences else (N, U))
    # zero_output_for_mask only with return_sequences (then padded outputs are 0, as torch pads)
    layer = getattr(layers, kind)(U, return_sequences=return_sequences,
                                  zero_output_for_mask=return_sequences)
    y, dx, grads, weights = signcore_run(layer, x, dy, mask=mask)

    mod = torch_module(kind, weights)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    packed = pack_padded_sequence(tx, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
    out, hn = mod(packed)
    if return_sequences:
        ty, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    else:
        ty = (hn[0] if kind == "LSTM" else hn)[0]
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty.detach().numpy(), "forward")
    assert_close(dx, tx.grad.numpy(), "dL/dx")
    assert np.all(dx[~mask] == 0)
    for name, a, b in zip(["kernel", "recurrent_kernel", "bias"], grads, torch_grads_as_keras(kind, mod)):
        assert_close(a, b, f"dL/d{name}", tol=1e-4)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("masked", [False, True])
def test_bidirectional_matches_torch(kind, masked):
    rng = np.random.default_rng(zlib.crc32(f"bi{kind}{masked}".encode()))
    lengths = np.array([7, 2, 6, 4]) if masked else np.full(N, T)
    mask = np.arange(T)[None, :] < lengths[:, None]
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    dy = rng.normal(size=(N, T, 2 * U))
    layer = layers.Bidirectional(getattr(layers, kind)(U, return_sequences=True))
    h = _core.LayerHarness(layer, [[T, F]])
    h.set_param_values(rng.normal(scale=0.4, size=h.param_values().size).astype(np.float32))
    y = h.forward([x], mask=mask if masked else None)
    dx, = h.backward(dy.astype(np.float32))
    flat = h.param_grads()
    grads = [flat[off:off + size].reshape(shape) for _, shape, _, off, size in h.weights]

    mod = torch_module(kind, layer.get_weights(), bidirectional=True)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    if masked:
        packed = pack_padded_sequence(tx, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
        ty, _ = pad_packed_sequence(mod(packed)[0], batch_first=True, total_length=T)
    else:
        ty = mod(tx)[0]
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty.detach().numpy(), "forward")
    assert_close(dx, tx.grad.numpy(), "dL/dx")
    expected = torch_grads_as_keras(kind, mod) + torch_grads_as_keras(kind, mod, "_reverse")
    for k, (a, b) in enumerate(zip(grads, expected)):
        assert_close(a, b, f"weight {k}", tol=1e-4)


def test_lstm_with_dropout_masks_matches_torch_on_the_same_masks():
    # Linear probe of the LSTM input-dropout semantics: Keras drops the same input features at every
    # step (one (N, F) mask for all gates with implementation 2). Feeding torch x * mask, with the
    # mask read back from a SimpleRNN twin that shares the layer seed, must give the same output.
    rng = np.random.default_rng(12)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    lstm = layers.LSTM(U, dropout=0.4, seed=9, return_sequences=True)
    h = _core.LayerHarness(lstm, [[T, F]])
    h.set_param_values(rng.normal(scale=0.4, size=h.param_values().size).astype(np.float32))
    y = h.forward([x], training=True)
    probe = layers.SimpleRNN(F, activation=None, dropout=0.4, seed=9)
    hp = _core.LayerHarness(probe, [[1, F]])
    probe.set_weights([np.eye(F), np.zeros((F, F)), np.zeros(F)])
    dp = hp.forward([np.ones((N, 1, F), np.float32)], training=True)  # (N, F): 0 or 1/(1-rate)
    assert np.all(np.isclose(dp, 0) | np.isclose(dp, 1 / 0.6)) and 0 < np.mean(dp == 0) < 1
    mod = torch_module("LSTM", lstm.get_weights())
    ty = mod(torch.from_numpy((x * dp[:, None, :]).astype(np.float64)))[0]
    assert_close(y, ty.detach().numpy(), "forward with input dropout")
