"""return_state=True on SimpleRNN, LSTM and GRU (functional API): the final states against PyTorch's
h_n / c_n with copied weights (with padded, masked clips), their gradients against autograd, the
summary row, save/load, and the cases signcore refuses."""
import numpy as np
import pytest

import signcore
from signcore import Input, Model, layers

torch = pytest.importorskip("torch")

U, F, T, N = 5, 3, 6, 4
LENGTHS = [6, 4, 1, 5]  # real steps per clip; the rest is padding, masked


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    mask = np.arange(T)[None, :] < np.array(LENGTHS)[:, None]
    x[~mask] = 7.0  # padding values that would change the state if they were used
    return x, mask


def torch_rnn(kind, weights):
    """nn.RNN / nn.LSTM / nn.GRU with the Keras weights copied (gate orders differ for GRU)."""
    kernel, recurrent, bias = (torch.tensor(w, dtype=torch.float64) for w in weights)
    cls = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind]
    rnn = cls(F, U, batch_first=True).double()
    if kind == "GRU":  # Keras z, r, h -> torch r, z, n; Keras bias rows: input, recurrent
        def reorder(m):
            z, r, h = m.chunk(3, dim=-1)
            return torch.cat([r, z, h], dim=-1)
        kernel, recurrent = reorder(kernel), reorder(recurrent)
        b_ih, b_hh = reorder(bias[0]), reorder(bias[1])
    else:
        b_ih, b_hh = bias, torch.zeros_like(bias)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(kernel.T)
        rnn.weight_hh_l0.copy_(recurrent.T)
        rnn.bias_ih_l0.copy_(b_ih)
        rnn.bias_hh_l0.copy_(b_hh)
    return rnn


def torch_final_states(kind, weights, x, lengths):
    """Final (h, c) per clip, each run on its real steps only (Keras's masked state carry-over)."""
    rnn = torch_rnn(kind, weights)
    hs, cs = [], []
    for n, length in enumerate(lengths):
        out = rnn(torch.tensor(x[n:n + 1, :length], dtype=torch.float64))[1]
        h, c = out if kind == "LSTM" else (out, None)
        hs.append(h[0, 0])
        if c is not None:
            cs.append(c[0, 0])
    return torch.stack(hs), (torch.stack(cs) if cs else None), rnn


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_final_states_match_torch_with_masked_padding(kind):
    x, mask = data()
    got, weights = [], None
    for k in range(3 if kind == "LSTM" else 2):  # one model per output (a layer joins one model)
        feats, m = Input((T, F)), Input((T,), dtype="bool")
        cell = getattr(layers, kind)(U, return_state=True)
        outs = cell(feats, mask=m)
        assert len(outs) == (3 if kind == "LSTM" else 2)
        assert [o.shape for o in outs] == [(None, U)] * len(outs)
        model = Model([feats, m], outs[k])
        if weights is None:
            weights = [w.copy() for w in cell.get_weights()]
        cell.set_weights(weights)
        got.append(model.predict([x, mask], verbose=0))
    h_ref, c_ref, _ = torch_final_states(kind, weights, x, LENGTHS)
    np.testing.assert_allclose(got[0], h_ref.detach().numpy(), rtol=1e-5, atol=1e-5)  # output (last step)
    np.testing.assert_allclose(got[1], h_ref.detach().numpy(), rtol=1e-5, atol=1e-5)  # state h
    if kind == "LSTM":
        np.testing.assert_allclose(got[2], c_ref.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_state_gradients_match_autograd(kind):
    """A head on the last state only (c for LSTM, h for GRU) plus a head on the sequence output:
    one SGD step with learning rate 1 moves every weight by minus its gradient; compare with
    autograd through the torch model."""
    x, mask = data(1)
    y = np.random.default_rng(2).normal(size=(N, 2)).astype(np.float32)
    feats, m = Input((T, F)), Input((T,), dtype="bool")
    cell = getattr(layers, kind)(U, return_sequences=True, return_state=True)
    seq, *states = cell(feats, mask=m)
    head = layers.Dense(2)
    out = head(states[-1])
    model = Model([feats, m], out)
    model.compile(optimizer=signcore.optimizers.SGD(learning_rate=1.0), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch([x, mask], y)
    after = model.get_weights()

    wk = [torch.tensor(w, dtype=torch.float64) for w in before]
    rnn = torch_rnn(kind, before[:3])
    hs, cs = [], []
    for n, length in enumerate(LENGTHS):
        res = rnn(torch.tensor(x[n:n + 1, :length], dtype=torch.float64))[1]
        h, c = res if kind == "LSTM" else (res, None)
        hs.append(h[0, 0])
        cs.append(c[0, 0] if c is not None else None)
    last = torch.stack(cs if kind == "LSTM" else hs)
    dense_w = wk[3].clone().requires_grad_(True)
    dense_b = wk[4].clone().requires_grad_(True)
    pred = last @ dense_w + dense_b
    loss = ((pred - torch.tensor(y, dtype=torch.float64)) ** 2).mean()
    loss.backward()
    # Recurrent weights: torch's gradients mapped back to Keras layouts.
    gk, gr = rnn.weight_ih_l0.grad.T.numpy(), rnn.weight_hh_l0.grad.T.numpy()
    gb_ih, gb_hh = rnn.bias_ih_l0.grad.numpy(), rnn.bias_hh_l0.grad.numpy()
    if kind == "GRU":  # torch r, z, n -> Keras z, r, h
        def back(m):
            r, z, h = np.split(m, 3, axis=-1)
            return np.concatenate([z, r, h], axis=-1)
        gk, gr, gb = back(gk), back(gr), np.stack([back(gb_ih), back(gb_hh)])
    else:  # b_hh is a copy of zeros with the same gradient as b_ih: Keras has one bias
        gb = gb_ih
    expected = [gk, gr, gb, dense_w.grad.numpy(), dense_b.grad.numpy()]
    for b, a, g, name in zip(before, after, expected, ["kernel", "recurrent", "bias", "dense_w", "dense_b"]):
        np.testing.assert_allclose(b - a, g, rtol=2e-4, atol=2e-6, err_msg=name)
    assert np.abs(expected[0]).max() > 1e-4  # the state gradient really reached the recurrent weights


def test_summary_lists_the_states_on_the_layer_row_and_layers_hide_them():
    feats = Input((T, F))
    lstm = layers.LSTM(U, return_state=True, name="enc")
    out, h, c = lstm(feats)
    model = Model(feats, layers.Dense(2, name="head")(c))
    lines = []
    model.summary(line_length=100, print_fn=lines.append)
    row = next(l for l in lines if l.startswith("enc (LSTM)"))
    assert f"[(None, {U}), (None, {U}), (None, {U})]" in row
    assert not any("RecurrentState" in l for l in lines)
    assert [l.name for l in model.layers] == ["enc", "head"]
    assert model.count_params() == 4 * U * (F + U + 1) + U * 2 + 2


def test_return_state_model_saves_and_loads(tmp_path):
    x, mask = data(3)
    feats, m = Input((T, F)), Input((T,), dtype="bool")
    _, h = layers.GRU(U, return_state=True)(feats, mask=m)
    model = Model([feats, m], layers.Dense(3)(h))
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch([x, mask], np.zeros((N, 3), np.float32))
    path = tmp_path / "state.signcore"
    model.save(path)
    loaded = signcore.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict([x, mask], verbose=0), model.predict([x, mask], verbose=0))
    assert loaded.get_layer(index=0).return_state


def test_return_state_refused_where_it_cannot_work():
    with pytest.raises(ValueError, match="return_state=True.*functional"):
        signcore.Sequential([Input((T, F)), layers.LSTM(U, return_state=True)])
    with pytest.raises(ValueError, match="Bidirectional.*return_state=True"):
        layers.Bidirectional(layers.GRU(U, return_state=True))
    state = signcore._core._RecurrentState(0, "lonely_state")
    dense_out = layers.Dense(2)(Input((F,)))
    with pytest.raises(ValueError, match="must follow a SimpleRNN, LSTM or GRU.*Dense"):
        Model(dense_out._history[1][0], signcore.functional.KerasTensor((2,), history=(state, [dense_out], None)))
