"""Dense and Activation against PyTorch: the forward and every gradient (input, kernel, bias) for each
activation. Keras's kernel is (in, units); torch.nn.Linear's weight is its transpose."""
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import signcore
from signcore import _core, layers

pytestmark = pytest.mark.torch

TORCH_ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda z: F.softmax(z, dim=-1),
    "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.2),
    "elu": lambda z: F.elu(z, alpha=1.0),
    "gelu": lambda z: F.gelu(z, approximate="none"),
    "selu": F.selu,
    "softplus": lambda z: F.softplus(z, beta=1.0, threshold=1e9),  # no linear cut-over
    "softsign": F.softsign,
    "silu": F.silu,
    "hard_sigmoid": F.hardsigmoid,  # relu6(x + 3) / 6, as Keras 3
    "exponential": torch.exp,
}


@pytest.mark.parametrize("activation", list(TORCH_ACTIVATIONS))
@pytest.mark.parametrize("lead,n", [((), 16), ((5,), 16), ((), 1)])  # n = 1: the GEMV forward
def test_dense_matches_torch(activation, lead, n):
    rng = np.random.default_rng(zlib.crc32(f"{activation}{lead}{n}".encode()))
    f, u = 10, 7
    x = rng.normal(size=(n,) + lead + (f,)).astype(np.float32)
    w = rng.normal(scale=0.4, size=(f, u)).astype(np.float32)
    b = rng.normal(scale=0.3, size=u).astype(np.float32)
    dy = rng.normal(size=(n,) + lead + (u,)).astype(np.float32)

    layer = layers.Dense(u, activation=activation)
    h = _core.LayerHarness(layer, [list(lead + (f,))])
    layer.set_weights([w, b])
    y = h.forward([x])
    dx, = h.backward(dy)
    dw, db = np.split(h.param_grads(), [f * u])

    linear = torch.nn.Linear(f, u).double()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w.T.astype(np.float64)))
        linear.bias.copy_(torch.from_numpy(b.astype(np.float64)))
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    ty = TORCH_ACTIVATIONS[activation](linear(tx))
    ty.backward(torch.from_numpy(dy.astype(np.float64)))

    tol = dict(rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol, err_msg="forward")
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol, err_msg="dL/dx")
    np.testing.assert_allclose(dw.reshape(f, u), linear.weight.grad.numpy().T, rtol=1e-4, atol=1e-4,
                               err_msg="dL/dkernel")
    np.testing.assert_allclose(db, linear.bias.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg="dL/dbias")


@pytest.mark.parametrize("activation", list(TORCH_ACTIVATIONS))
def test_activation_layer_matches_torch(activation):
    rng = np.random.default_rng(7)
    x = rng.normal(scale=2.0, size=(6, 4, 9)).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    h = _core.LayerHarness(layers.Activation(activation), [[4, 9]])
    y = h.forward([x])
    dx, = h.backward(dy)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    ty = TORCH_ACTIVATIONS[activation](tx)
    ty.backward(torch.from_numpy(dy.astype(np.float64)))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,f,u", [(16, 1000, 203),   # a skinny batch: the products split by columns
                                   (300, 70, 40)])     # a tall batch: split by rows
def test_dense_large_products_on_signcore_threads_match_torch(threads, n, f, u):
    """Products past the parallel threshold run on signcore's threads, the output cut into blocks
    of 16 whole rows or columns (gemm.cpp), ragged last block included."""
    rng = np.random.default_rng(n + f + u)
    x = rng.normal(size=(n, f)).astype(np.float32)
    w = rng.normal(scale=0.1, size=(f, u)).astype(np.float32)
    b = rng.normal(scale=0.1, size=u).astype(np.float32)
    dy = rng.normal(size=(n, u)).astype(np.float32)
    old = signcore.get_num_threads()
    signcore.set_num_threads(threads)
    try:
        layer = layers.Dense(u, activation="tanh")
        h = _core.LayerHarness(layer, [[f]])
        layer.set_weights([w, b])
        y = h.forward([x])
        dx, = h.backward(dy)
        grads = h.param_grads()
    finally:
        signcore.set_num_threads(old)
    linear = torch.nn.Linear(f, u).double()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w.T.astype(np.float64)))
        linear.bias.copy_(torch.from_numpy(b.astype(np.float64)))
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    ty = torch.tanh(linear(tx))
    ty.backward(torch.from_numpy(dy.astype(np.float64)))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg="forward")
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg="dL/dx")
    dw = grads[:f * u].reshape(f, u)
    np.testing.assert_allclose(dw, linear.weight.grad.numpy().T, rtol=1e-4, atol=1e-3, err_msg="dL/dkernel")
    np.testing.assert_allclose(grads[f * u:], linear.bias.grad.numpy(), rtol=1e-4, atol=1e-3, err_msg="dL/dbias")


@pytest.mark.parametrize("n", [3, 40], ids=["one_block", "split"])
def test_dense_gradients_are_written_after_zeroing_and_added_without(n):
    """zero_grads() only marks the gradients stale (parameters.hpp): Dense's kernel gradient is then
    written over the stale values, the bias gradient zeroed before it adds. Without zero_grads the
    next backward adds to the last one (gradient accumulation), as before. Expected: x^T dy, sum dy."""
    f, u = 300, 48  # with n = 40 the products pass the parallel threshold of gemm.cpp
    rng = np.random.default_rng(n)
    layer = layers.Dense(u)
    h = _core.LayerHarness(layer, [[f]])
    xs = [rng.normal(size=(n, f)).astype(np.float32) for _ in range(3)]
    dys = [rng.normal(size=(n, u)).astype(np.float32) for _ in range(3)]

    def expected(*steps):
        dw = sum(xs[s].astype(np.float64).T @ dys[s] for s in steps)
        return np.concatenate([dw.ravel(), sum(dys[s].astype(np.float64).sum(0) for s in steps)])

    h.forward([xs[0]])
    h.backward(dys[0])
    np.testing.assert_allclose(h.param_grads(), expected(0), rtol=1e-4, atol=1e-4)
    h.forward([xs[1]])
    h.backward(dys[1], zero_grads=False)
    np.testing.assert_allclose(h.param_grads(), expected(0, 1), rtol=1e-4, atol=1e-4)
    h.forward([xs[2]])
    h.backward(dys[2])  # zeroes first: the sums of steps 0 and 1 must not leak in
    np.testing.assert_allclose(h.param_grads(), expected(2), rtol=1e-4, atol=1e-4)


def test_dense_without_bias_matches_torch():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 6)).astype(np.float32)
    w = rng.normal(size=(6, 4)).astype(np.float32)
    dy = rng.normal(size=(8, 4)).astype(np.float32)
    layer = layers.Dense(4, activation="gelu", use_bias=False)
    h = _core.LayerHarness(layer, [[6]])
    layer.set_weights([w])
    y = h.forward([x])
    dx, = h.backward(dy)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    tw = torch.from_numpy(w.astype(np.float64)).requires_grad_()
    ty = F.gelu(tx @ tw)
    ty.backward(torch.from_numpy(dy.astype(np.float64)))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(h.param_grads().reshape(6, 4), tw.grad.numpy(), rtol=1e-4, atol=1e-4)
