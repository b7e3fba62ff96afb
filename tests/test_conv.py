"""Conv2D and ZeroPadding2D: finite-difference gradient checks (tests/gradcheck.py), the forward and
every gradient against PyTorch (padding explicitly like Keras: the odd pixel at the bottom/right),
hand-computed cases, Keras's output-size formulas, argument errors, chunking invariance, and a small
CNN that learns."""
import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradcheck import check_layer

import signcore
from signcore import _core, layers

TORCH_ACTIVATIONS = {
    None: lambda z: z,
    "linear": lambda z: z,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda z: F.softmax(z, dim=-1),  # channels-last: over the filters
    "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.2),
    "elu": F.elu,
    "gelu": lambda z: F.gelu(z, approximate="none"),
    "selu": F.selu,
    "softplus": lambda z: F.softplus(z, beta=1.0, threshold=1e9),
    "softsign": F.softsign,
    "silu": F.silu,
    "hard_sigmoid": F.hardsigmoid,
    "exponential": torch.exp,
}
# Activations with kinks (selu: its slope jumps at 0): their cases use integer inputs and kernels with a half-integer bias, so
# every pre-activation is a half-integer, far (in units of the finite-difference step) from the
# kinks at 0 and +-3.
KINKED = {"relu", "leaky_relu", "hard_sigmoid", "selu"}

# (H, W, C, filters, kernel_size, strides, padding, dilation_rate, activation, use_bias, batch)
CASES = [
    (5, 6, 2, 3, (3, 3), (1, 1), "valid", (1, 1), None, True, 2),
    (7, 5, 3, 4, (3, 2), (2, 2), "valid", (1, 1), "relu", True, 2),
    (6, 6, 2, 3, (2, 2), (1, 1), "same", (1, 1), "sigmoid", True, 2),  # even kernel, "same"
    (7, 6, 2, 2, (4, 4), (2, 1), "same", (1, 1), "tanh", False, 2),    # even kernel, stride 2
    (5, 7, 2, 3, (4, 2), (2, 2), "same", (1, 1), "softmax", True, 2),
    (9, 8, 2, 3, (3, 3), (1, 1), "same", (2, 2), "leaky_relu", True, 2),  # dilation 2
    (8, 7, 1, 2, (2, 3), (1, 1), "valid", (2, 1), "elu", True, 2),
    (6, 5, 3, 4, (3, 3), (1, 1), "same", (1, 1), "gelu", True, 1),     # batch 1
    (4, 5, 3, 5, (1, 1), (1, 1), "valid", (1, 1), "selu", True, 3),    # 1x1: no im2col
    (5, 5, 4, 3, (1, 1), (2, 2), "same", (1, 1), "softplus", False, 2),  # 1x1 with stride
    (5, 4, 2, 2, (5, 4), (1, 1), "valid", (1, 1), "softsign", True, 2),  # kernel = image
    (6, 6, 2, 3, (3, 3), (3, 3), "same", (1, 1), "silu", True, 2),
    (7, 7, 2, 2, (3, 3), (2, 2), "valid", (1, 1), "hard_sigmoid", True, 2),
    (4, 4, 2, 2, (2, 2), (1, 1), "same", (1, 1), "exponential", True, 2),
    (5, 6, 3, 3, (3, 3), (1, 1), "valid", (1, 1), "linear", False, 2),
]


def case_id(c):
    H, W, C, f, k, s, pad, d, act, bias, n = c
    return f"{H}x{W}x{C}-f{f}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-{pad}-d{d[0]}{d[1]}-{act}-b{int(bias)}-n{n}"


def case_data(c):
    """Float64 inputs, kernel and bias for a case (kink-safe for the kinked activations)."""
    H, W, C, f, k, s, pad, d, act, bias, n = c
    rng = np.random.default_rng(zlib.crc32(case_id(c).encode()))
    if act in KINKED:
        x = rng.integers(-2, 3, size=(n, H, W, C)).astype(np.float64)
        w = rng.integers(-1, 2, size=k + (C, f)).astype(np.float64)
        b = np.full(f, 0.5) if bias else None  # without it, only for tests that take no differences
    else:
        x = rng.normal(size=(n, H, W, C))
        w = rng.normal(scale=0.5 / math.sqrt(k[0] * k[1] * C), size=k + (C, f))
        b = rng.normal(scale=0.3, size=f) if bias else None
    return x, w, b


def keras_padding(size, k, s, d, padding):
    """(before, after) zeros along one axis, as Keras/TensorFlow pad for "same"."""
    if padding == "valid":
        return 0, 0
    out = -(-size // s)
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
    return total // 2, total - total // 2


def make_layer(c, **kw):
    H, W, C, f, k, s, pad, d, act, bias, n = c
    return layers.Conv2D(f, k, strides=s, padding=pad, dilation_rate=d, activation=act,
                         use_bias=bias, **kw)


def torch_conv(c, x, w, b, dy):
    """PyTorch forward and gradients in float64 (NCHW inside, channels-last outside)."""
    H, W, C, f, k, s, pad, d, act, bias, n = c
    tx = torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2).requires_grad_()
    tw = torch.tensor(w, dtype=torch.float64).permute(3, 2, 0, 1).requires_grad_()  # (F, C, kh, kw)
    tb = torch.tensor(b, dtype=torch.float64).requires_grad_() if b is not None else None
    pt, pb = keras_padding(H, k[0], s[0], d[0], pad)
    pl, pr = keras_padding(W, k[1], s[1], d[1], pad)
    z = F.conv2d(F.pad(tx, (pl, pr, pt, pb)), tw, tb, stride=s, dilation=d)
    ty = TORCH_ACTIVATIONS[act](z.permute(0, 2, 3, 1))
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    return (ty.detach().numpy(), tx.grad.permute(0, 2, 3, 1).numpy(),
            tw.grad.permute(2, 3, 1, 0).numpy(), None if tb is None else tb.grad.numpy())


def flat_params(w, b):
    return np.concatenate([w.ravel()] + ([] if b is None else [b]))


# ----- gradient checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv2d_gradcheck(case):
    x, w, b = case_data(case)
    H, W, C = case[:3]
    check_layer(make_layer(case), [(H, W, C)], inputs=[x], params=flat_params(w, b),
                max_checks=80, seed=1)


def test_zero_padding2d_gradcheck():
    check_layer(layers.ZeroPadding2D(((1, 2), (0, 3))), [(3, 4, 2)], batch=2)


# ----- against PyTorch ------------------------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv2d_matches_torch(case):
    x, w, b = case_data(case)
    layer = make_layer(case)
    h = _core.LayerHarness(layer, [list(case[:3])])
    layer.set_weights([w.astype(np.float32)] + ([] if b is None else [b.astype(np.float32)]))
    y = h.forward([x.astype(np.float32)])
    dy = np.random.default_rng(5).normal(size=y.shape)
    dx, = h.backward(dy.astype(np.float32))
    g = h.param_grads()
    ty, tdx, tdw, tdb = torch_conv(case, x.astype(np.float32).astype(np.float64),
                                   w.astype(np.float32), None if b is None else b.astype(np.float32), dy)
    assert y.shape == ty.shape
    tol = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ty, **tol, err_msg="forward")
    np.testing.assert_allclose(dx, tdx, **tol, err_msg="dL/dx")
    np.testing.assert_allclose(g[:w.size].reshape(w.shape), tdw, **tol, err_msg="dL/dkernel")
    if b is not None:
        np.testing.assert_allclose(g[w.size:], tdb, **tol, err_msg="dL/dbias")


@pytest.mark.torch
def test_conv2d_cifar_sized_layer_matches_torch():
    """A realistic layer (many chunks, several images per chunk) against PyTorch."""
    case = (16, 16, 8, 16, (3, 3), (1, 1), "same", (1, 1), "relu", True, 9)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 16, 16, 8)).astype(np.float32)
    w = rng.normal(scale=0.2, size=(3, 3, 8, 16)).astype(np.float32)
    b = rng.normal(scale=0.1, size=16).astype(np.float32)
    layer = make_layer(case)
    h = _core.LayerHarness(layer, [[16, 16, 8]])
    layer.set_weights([w, b])
    y = h.forward([x])
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx, = h.backward(dy)
    g = h.param_grads()
    ty, tdx, tdw, tdb = torch_conv(case, x, w, b, dy)
    np.testing.assert_allclose(y, ty, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, tdx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g[:w.size].reshape(w.shape), tdw, rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(g[w.size:], tdb, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("chunk_bytes", [64, 3000, 1 << 30])
def test_conv2d_result_does_not_depend_on_chunking(chunk_bytes):
    """Chunks of one output line, of a part of an image, and the whole batch give the same numbers."""
    case = (9, 8, 3, 4, (3, 3), (2, 1), "same", (1, 1), "tanh", True, 3)
    x, w, b = case_data(case)
    x = x.astype(np.float32)
    dy = np.random.default_rng(2).normal(size=(3, 5, 8, 4)).astype(np.float32)

    def run():
        layer = make_layer(case)
        h = _core.LayerHarness(layer, [[9, 8, 3]])
        layer.set_weights([w.astype(np.float32), b.astype(np.float32)])
        y = h.forward([x])
        dx, = h.backward(dy)
        grads = h.param_grads()
        h.backward(dy, need=[False])  # as the first layer of a model: weight gradients only
        return y, dx, grads, h.param_grads()

    reference = run()
    old = _core._conv_chunk_bytes()
    try:
        _core._set_conv_chunk_bytes(chunk_bytes)
        chunked = run()
    finally:
        _core._set_conv_chunk_bytes(old)
    for a, r in zip(chunked, reference):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", [
    (12, 11, 5, 7, (3, 3), (1, 1), "same", (1, 1), "relu", True, 6),
    (12, 11, 5, 7, (3, 2), (2, 2), "valid", (1, 1), None, True, 5),
    (12, 11, 5, 7, (3, 3), (1, 1), "same", (2, 2), "relu", False, 6),
], ids=case_id)
@pytest.mark.parametrize("lines_per_chunk", [None, 3], ids=["image_chunks", "line_chunks"])
def test_conv2d_pipelined_threading_matches_shared(case, lines_per_chunk):
    """The pipelined mode (each thread runs whole chunks with a single-threaded sgemm) gives the
    numbers of the shared mode (threads take turns on every chunk), with dx requested or not, on two
    threads and several chunks. With chunks of a few lines, the backward still runs an image per
    thread when an image is at most four chunks (conv2d.cpp), and must match too."""
    x, w, b = case_data(case)
    x = x.astype(np.float32)
    H, W, C, f, k, s, pad, d, act, bias, n = case

    def run():
        layer = make_layer(case)
        h = _core.LayerHarness(layer, [[H, W, C]])
        layer.set_weights([w.astype(np.float32)] + ([b.astype(np.float32)] if bias else []))
        y = h.forward([x])
        dy = np.random.default_rng(4).normal(size=y.shape).astype(np.float32)
        dx, = h.backward(dy)
        grads = h.param_grads()
        h.backward(dy, need=[False])
        return y, dx, grads, h.param_grads()

    old = (_core._conv_chunk_bytes(), _core._conv_pipelined(), signcore.get_num_threads())
    try:
        signcore.set_num_threads(2)
        _core._set_conv_pipelined(False)
        reference = run()
        oh, ow = reference[0].shape[1:3]
        lines = oh if lines_per_chunk is None else lines_per_chunk
        _core._set_conv_chunk_bytes(lines * ow * max(k[0] * k[1] * C, f) * 4)
        _core._set_conv_pipelined(True)
        pipelined = run()
    finally:
        _core._set_conv_chunk_bytes(old[0])
        _core._set_conv_pipelined(old[1])
        signcore.set_num_threads(old[2])
    for a, r in zip(pipelined, reference):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


# The direct forward kernel (direct_conv.cpp) runs for relu / linear with filters a multiple of 8;
# blocks of 6 pixels x 16 filters (or 12 x 8), with narrower blocks for the rest of a line.
DIRECT_CASES = [
    (9, 13, 3, 16, (3, 3), (1, 1), "same", (1, 1), "relu", True, 2),     # 13 = 2 blocks of 6 + 1
    (8, 11, 5, 8, (3, 3), (1, 1), "valid", (1, 1), "linear", True, 1),   # 12 x 8 blocks, 9 wide
    (10, 17, 4, 24, (3, 2), (2, 2), "same", (1, 1), "relu", False, 2),   # F = 24: blocks of 8
    (12, 12, 2, 32, (3, 3), (1, 1), "same", (2, 2), "relu", True, 2),    # dilation
    (7, 20, 6, 48, (2, 4), (1, 3), "same", (1, 1), "linear", True, 3),   # even kernel, stride 3
    (5, 5, 1, 16, (5, 5), (1, 1), "valid", (1, 1), "relu", True, 2),     # kernel = image
]


@pytest.mark.parametrize("case", DIRECT_CASES, ids=case_id)
@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_direct_forward_matches_torch_and_im2col(case, threads):
    """The direct forward kernel equals PyTorch's convolution and signcore's im2col + SGEMM path
    (which the backward pass keeps using), on 1 and 2 threads."""
    x, w, b = case_data(case)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    params = [w32] + ([] if b is None else [b.astype(np.float32)])

    def forward(direct):
        layer = make_layer(case)
        h = _core.LayerHarness(layer, [list(case[:3])])
        layer.set_weights(params)
        _core._set_conv_direct(direct)
        try:
            return h.forward([x32])
        finally:
            _core._set_conv_direct(True)

    old = signcore.get_num_threads()
    signcore.set_num_threads(threads)
    try:
        assert _core._conv_direct()
        direct, im2col = forward(True), forward(False)
    finally:
        signcore.set_num_threads(old)
    ty = torch_conv(case, x32.astype(np.float64), w32, None if b is None else b.astype(np.float32),
                    np.ones(direct.shape))[0]
    np.testing.assert_allclose(direct, ty, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(direct, im2col, rtol=1e-5, atol=1e-5)
    assert not np.array_equal(direct, np.zeros_like(direct))


# The input gradient of a stride-1 convolution with C a multiple of 8 runs as a direct convolution of
# dz with the flipped, transposed kernel (direct_conv.hpp) in the pipelined backward, for F <= 64.
DIRECT_DX_CASES = [
    (9, 13, 8, 16, (3, 3), (1, 1), "same", (1, 1), "relu", True, 3),
    (8, 11, 16, 8, (3, 3), (1, 1), "valid", (1, 1), "linear", True, 2),  # "full" padding in dx
    (10, 9, 8, 24, (2, 4), (1, 1), "same", (1, 1), "relu", False, 2),    # even kernel: odd pixel after
    (12, 12, 8, 32, (3, 3), (1, 1), "same", (2, 2), "relu", True, 2),    # dilation
    (11, 7, 8, 5, (3, 2), (1, 1), "valid", (2, 1), "linear", True, 3),   # F = 5, dilation on one axis
    (5, 5, 24, 8, (5, 5), (1, 1), "valid", (1, 1), "relu", True, 1),     # kernel = image, batch 1
    (9, 10, 8, 64, (3, 3), (1, 1), "same", (1, 1), "relu", True, 2),     # F = 64, the largest direct
]


def check_direct_backward(case, threads, switch):
    """dx, dW and db with the direct backward kernel that `switch` names (on by default) equal
    PyTorch's and those of the GEMM path (the switch off; the same forward), on `threads` threads,
    with one image per chunk (several chunks per thread)."""
    x, w, b = case_data(case)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    params = [w32] + ([] if b is None else [b.astype(np.float32)])
    H, W, C, f, k, s, pad, d, act, bias, n = case
    span = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    oh, ow = (H, W) if pad == "same" else (H - span[0] + 1, W - span[1] + 1)
    turn = getattr(_core, "_set_conv_" + switch)

    def run(direct):
        layer = make_layer(case)
        h = _core.LayerHarness(layer, [[H, W, C]])
        layer.set_weights(params)
        turn(direct)
        try:
            y = h.forward([x32])
            g = np.random.default_rng(7).normal(size=y.shape).astype(np.float32)
            dx, = h.backward(g)
            return y, g, dx, h.param_grads()
        finally:
            turn(True)

    old = (_core._conv_chunk_bytes(), signcore.get_num_threads())
    try:
        signcore.set_num_threads(threads)
        # One image per chunk, so the pipelined backward (the only one that runs the direct input
        # gradient) runs several chunks per thread. Chunks are sized by their im2col columns, or by
        # their dz when both gradients run directly (conv2d.cpp: no columns then).
        direct_dw = f % 8 == 0 and (f <= 64 or C < 8)
        direct_dx = s == (1, 1) and C % 8 == 0 and (f <= 64 or winograd_case(case))
        row = f if direct_dw and direct_dx else max(k[0] * k[1] * C, f)
        _core._set_conv_chunk_bytes(oh * ow * row * 4)
        assert getattr(_core, "_conv_" + switch)()
        y, dy, dx, grads = run(True)
        gemm_y, _, gemm_dx, gemm_grads = run(False)
    finally:
        _core._set_conv_chunk_bytes(old[0])
        signcore.set_num_threads(old[1])
    ty, tdx, tdw, tdb = torch_conv(case, x32.astype(np.float64), w32,
                                   None if b is None else b.astype(np.float32), dy.astype(np.float64))
    np.testing.assert_allclose(y, ty, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, gemm_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, tdx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, gemm_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads, flat_params(tdw, tdb), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(grads, gemm_grads, rtol=1e-5, atol=1e-4)
    assert np.abs(dx).max() > 0.1 and np.abs(grads).max() > 0.1


@pytest.mark.torch
@pytest.mark.parametrize("case", DIRECT_DX_CASES, ids=case_id)
@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_direct_input_gradient_matches_torch_and_col2im(case, threads):
    check_direct_backward(case, threads, "direct_input_gradient")


def winograd_case(case):
    """Whether Conv2D runs the case's forward pass and input gradient as Winograd F(2x2, 3x3)."""
    H, W, C, f, k, s, pad, d, act, bias, n = case
    return k == (3, 3) and s == (1, 1) and d == (1, 1) and C % 8 == 0 and f % 8 == 0 and \
        act in ("relu", "linear", None)


# Winograd F(2x2, 3x3) (winograd.hpp): 3 x 3, stride 1, undilated, C and F multiples of 8. The
# forward pass, the input gradient (the same transform on dz with the flipped kernel) and the kernel
# gradient (its adjoint) against PyTorch and against the direct kernels (the switch off), on 1 and 2
# threads.
WINOGRAD_CASES = [
    (9, 13, 8, 16, (3, 3), (1, 1), "same", (1, 1), "relu", True, 5),     # odd sizes: cut tiles; blocks span images
    (8, 11, 16, 8, (3, 3), (1, 1), "valid", (1, 1), "linear", True, 2),   # 6 x 9 out; dx pads by 2
    (12, 10, 24, 24, (3, 3), (1, 1), "same", (1, 1), "relu", False, 1),   # 8-wide panels, batch 1
    (5, 4, 8, 128, (3, 3), (1, 1), "same", (1, 1), "linear", True, 3),    # F = 128: dx as Winograd too
    (3, 3, 8, 8, (3, 3), (1, 1), "valid", (1, 1), "relu", True, 4),       # one output pixel: one cut tile
    (16, 16, 32, 64, (3, 3), (1, 1), "same", (1, 1), "relu", True, 2),    # CIFAR's third convolution
]


@pytest.mark.parametrize("case", [(5, 7, 8, 8, (3, 3), (1, 1), "same", (1, 1), "linear", True, 3),
                                  (6, 5, 16, 8, (3, 3), (1, 1), "valid", (1, 1), "relu", True, 2)],
                         ids=case_id)
def test_conv2d_winograd_gradcheck(case):
    """The Winograd forward and both Winograd gradients against central differences (one image
    per chunk, so that the pipelined backward, which runs them, takes the batch)."""
    assert winograd_case(case) and _core._conv_winograd()
    x, w, b = case_data(case)
    H, W, C = case[:3]
    old = _core._conv_chunk_bytes()
    _core._set_conv_chunk_bytes(1)  # at least one whole image per chunk
    try:
        check_layer(make_layer(case), [(H, W, C)], inputs=[x], params=flat_params(w, b),
                    max_checks=80, seed=1)
    finally:
        _core._set_conv_chunk_bytes(old)


@pytest.mark.torch
@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=case_id)
@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_winograd_matches_torch_and_the_direct_kernel(case, threads):
    assert winograd_case(case)
    check_direct_backward(case, threads, "winograd")


def test_conv2d_winograd_random_geometries_match_the_direct_kernels():
    """40 random Winograd-eligible layers (sizes 1-13, "same" / "valid", 8-40 channels, 8-136
    filters, relu / linear, batch 1-5, 1 or 2 threads, one image or 1 MB per chunk): output, dx, dW
    and db equal the direct kernels' to float rounding."""
    rng = np.random.default_rng(5)
    old = (_core._conv_chunk_bytes(), signcore.get_num_threads())
    try:
        for _ in range(40):
            H, W = (int(v) for v in rng.integers(1, 14, 2))
            C, f = int(rng.choice([8, 16, 24, 40])), int(rng.choice([8, 16, 24, 32, 136]))
            pad = "valid" if H >= 3 and W >= 3 and rng.random() < 0.5 else "same"
            act, n = str(rng.choice(["relu", "linear"])), int(rng.integers(1, 6))
            signcore.set_num_threads(int(rng.integers(1, 3)))
            _core._set_conv_chunk_bytes(int(rng.choice([1, 1 << 20])))
            x = rng.normal(size=(n, H, W, C)).astype(np.float32)
            h = _core.LayerHarness(layers.Conv2D(f, 3, padding=pad, activation=act), [[H, W, C]])
            results = []
            for on in (True, False):
                _core._set_conv_winograd(on)
                try:
                    y = h.forward([x])
                    h.zero_grads()
                    dx, = h.backward(np.random.default_rng(1).normal(size=y.shape).astype(np.float32))
                    results.append((y.copy(), dx.copy(), np.array(h.param_grads())))
                finally:
                    _core._set_conv_winograd(True)
            for a, b in zip(*results):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * max(1.0, np.abs(b).max()),
                                           err_msg=f"{(H, W, C, f, pad, act, n)}")
    finally:
        _core._set_conv_chunk_bytes(old[0])
        signcore.set_num_threads(old[1])


# The kernel gradient runs directly (direct_conv.hpp) in the pipelined backward for F a multiple of
# 8 (where conv2d.cpp picks it): blocks of 6 channels x 16 filters, 12 x 8, or 3 x 32 when the
# channels are fewer than 6, with narrower blocks for the rest, over tiles of lines of 32-96 pixels.
# Undilated along the width, the pixels away from the padding run all kw taps as kw C channels.
DIRECT_DW_CASES = [
    (9, 13, 7, 16, (3, 3), (1, 1), "same", (1, 1), "relu", True, 3),      # 6 x 16 blocks + 1 channel
    (8, 11, 13, 24, (3, 3), (1, 1), "valid", (1, 1), "linear", True, 2),  # 12 x 8 blocks + 1 channel
    (10, 17, 3, 32, (3, 2), (2, 2), "same", (1, 1), "relu", False, 2),    # C = 3: 3 x 32, stride 2
    (12, 12, 2, 64, (3, 3), (1, 1), "same", (2, 2), "relu", True, 2),     # dilation, C = 2 of 3
    (7, 20, 6, 48, (2, 4), (1, 3), "same", (1, 1), "linear", True, 3),    # even kernel, stride 3
    (6, 100, 1, 8, (3, 3), (1, 1), "same", (1, 1), "relu", True, 2),      # one line per tile, C = 1
    (5, 5, 9, 16, (5, 5), (1, 1), "valid", (1, 1), "relu", True, 1),      # kernel = image, batch 1
]


@pytest.mark.torch
@pytest.mark.parametrize("case", DIRECT_DW_CASES, ids=case_id)
@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_direct_kernel_gradient_matches_torch_and_gemm(case, threads):
    check_direct_backward(case, threads, "direct_kernel_gradient")


# ----- hand-computed --------------------------------------------------------------------------------

def run_tiny(padding, strides=(1, 1), dilation=(1, 1), dy=None):
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)  # [[1,2,3],[4,5,6],[7,8,9]]
    layer = layers.Conv2D(1, 2, strides=strides, padding=padding, dilation_rate=dilation)
    h = _core.LayerHarness(layer, [[3, 3, 1]])
    layer.set_weights([np.ones((2, 2, 1, 1), np.float32), np.array([0.5], np.float32)])
    y = h.forward([x])
    grads = None
    if dy is not None:
        dx, = h.backward(np.asarray(dy, np.float32).reshape(y.shape))
        grads = dx, h.param_grads()
    return y[0, :, :, 0], grads


def test_conv2d_hand_computed_forward():
    y, _ = run_tiny("valid")
    np.testing.assert_array_equal(y, [[12.5, 16.5], [24.5, 28.5]])  # 2x2 window sums + 0.5
    y, _ = run_tiny("same")  # one zero row / column at the bottom / right
    np.testing.assert_array_equal(y, [[12.5, 16.5, 9.5], [24.5, 28.5, 15.5], [15.5, 17.5, 9.5]])
    y, _ = run_tiny("same", strides=(2, 2))  # out ceil(3/2) = 2, windows at rows/cols 0 and 2
    np.testing.assert_array_equal(y, [[12.5, 9.5], [15.5, 9.5]])
    y, _ = run_tiny("valid", dilation=(2, 2))  # the four corners
    np.testing.assert_array_equal(y, [[20.5]])


def test_conv2d_hand_computed_gradients():
    _, (dx, g) = run_tiny("valid", dy=np.ones(4))
    # Each input pixel receives one per window covering it; dW[i, j] sums each window's pixel.
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    np.testing.assert_array_equal(g, [12, 16, 24, 28, 4])
    _, (dx, g) = run_tiny("same", strides=(2, 2), dy=[1, 10, 100, 1000])
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 1, 10], [1, 1, 10], [100, 100, 1000]])
    # kernel[0,0] sees x at (0,0),(0,2),(2,0),(2,2); kernel[1,1] sees (1,1) and padding zeros.
    np.testing.assert_array_equal(g, [1 + 30 + 700 + 9000, 2 + 0 + 800 + 0, 4 + 60 + 0 + 0, 5, 1111])


def test_zero_padding2d_forward_and_backward():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 2)).astype(np.float32)
    h = _core.LayerHarness(layers.ZeroPadding2D(((1, 2), (3, 0))), [[3, 4, 2]])
    y = h.forward([x])
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (1, 2), (3, 0), (0, 0))))
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx, = h.backward(dy)
    np.testing.assert_array_equal(dx, dy[:, 1:4, 3:7, :])


@pytest.mark.parametrize("padding, expected", [
    (2, ((2, 2), (2, 2))),
    ((1, 3), ((1, 1), (3, 3))),
    (((0, 1), (2, 3)), ((0, 1), (2, 3))),
])
def test_zero_padding2d_argument_forms(padding, expected):
    layer = layers.ZeroPadding2D(padding)
    assert layer.padding == expected
    h = _core.LayerHarness(layer, [[4, 5, 3]])
    (t, b), (l, r) = expected
    assert h.output_shape == (4 + t + b, 5 + l + r, 3)
    assert layer.get_config()["padding"] == [list(expected[0]), list(expected[1])]
    clone = layers.ZeroPadding2D.from_config(layer.get_config())
    assert clone.padding == expected


def test_zero_padding2d_default_and_errors():
    assert layers.ZeroPadding2D().padding == ((1, 1), (1, 1))
    with pytest.raises(ValueError, match=r"padding=-1"):
        layers.ZeroPadding2D(-1)
    with pytest.raises(ValueError, match=r"padding=\(1, 2, 3\)"):
        layers.ZeroPadding2D((1, 2, 3))
    with pytest.raises(ValueError, match=r"\(1, -2\)"):
        layers.ZeroPadding2D(((0, 0), (1, -2)))
    with pytest.raises(ValueError, match="channels_first"):
        layers.ZeroPadding2D(1, data_format="channels_first")
    with pytest.raises(ValueError, match=r"\(None, 4, 5\)"):
        _core.LayerHarness(layers.ZeroPadding2D(1), [[4, 5]])


# ----- shapes, weights, config ----------------------------------------------------------------------

def keras_out(size, k, s, d, padding):
    if padding == "same":
        return math.ceil(size / s)
    return math.floor((size - ((k - 1) * d + 1)) / s) + 1


@pytest.mark.parametrize("size", [5, 6, 7, 12, 13])
@pytest.mark.parametrize("k, s, d", [(1, 1, 1), (2, 1, 1), (3, 1, 1), (3, 2, 1), (4, 3, 1),
                                     (5, 2, 1), (3, 1, 2), (2, 1, 3)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_output_shape_follows_keras(size, k, s, d, padding):
    layer = layers.Conv2D(3, (k, 2), strides=(s, 1), padding=padding, dilation_rate=(d, 1))
    h = _core.LayerHarness(layer, [[size, 9, 2]])
    assert h.output_shape == (keras_out(size, k, s, d, padding), keras_out(9, 2, 1, 1, padding), 3)


def test_conv2d_weights_config_and_properties():
    layer = layers.Conv2D(6, (3, 2), strides=2, padding="SAME", activation="relu", name="c1")
    assert layer.kernel_size == (3, 2) and layer.strides == (2, 2) and layer.padding == "same"
    assert layer.dilation_rate == (1, 1) and layer.filters == 6 and layer.groups == 1
    assert layer.data_format == "channels_last" and layer.use_bias
    model = signcore.Sequential([layers.Conv2D(4, 3, input_shape=(8, 8, 3)), layer])
    w = layer.get_weights()
    assert [a.shape for a in w] == [(3, 2, 4, 6), (6,)]
    assert layer.weight_names == ["c1/kernel", "c1/bias"]
    assert layer.count_params() == 3 * 2 * 4 * 6 + 6
    assert model.count_params() == 3 * 3 * 3 * 4 + 4 + 3 * 2 * 4 * 6 + 6
    assert layer.output_shape == (None, 3, 3, 6)
    np.testing.assert_array_equal(w[1], 0)  # zeros
    limit = math.sqrt(6 / (3 * 2 * 4 + 3 * 2 * 6))  # glorot_uniform with Keras's conv fans
    assert np.abs(w[0]).max() <= limit and np.abs(w[0]).max() > 0.5 * limit
    c = layer.get_config()
    assert c["filters"] == 6 and c["kernel_size"] == [3, 2] and c["strides"] == [2, 2]
    assert c["padding"] == "same" and c["dilation_rate"] == [1, 1] and c["groups"] == 1
    assert c["activation"] == "relu" and c["data_format"] == "channels_last" and c["use_bias"]
    clone = layers.Conv2D.from_config(c)
    assert clone.get_config() == c
    again = signcore.layers.deserialize(signcore.layers.serialize(layers.Conv2D(2, 1, name="z")))
    assert again.class_name == "Conv2D" and again.kernel_size == (1, 1)


def test_conv2d_frozen_layer_leaves_weight_gradients_alone():
    layer = layers.Conv2D(3, 3, padding="same", activation="tanh", trainable=False)
    h = _core.LayerHarness(layer, [[5, 5, 2]])
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 2)).astype(np.float32)
    y = h.forward([x])
    dx, = h.backward(np.ones_like(y))
    np.testing.assert_array_equal(h.param_grads(), 0)
    assert np.abs(dx).sum() > 0 and np.all(np.isfinite(dx))


# ----- argument errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(filters=0, kernel_size=3), r"filters=0"),
    (dict(filters=-2, kernel_size=3), r"filters=-2"),
    (dict(filters=4, kernel_size=3, padding="full"), r"padding='full'"),
    (dict(filters=4, kernel_size=3, groups=2), r"groups=2"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2),
     r"strides=\(2, 2\) and dilation_rate=\(2, 2\)"),
    (dict(filters=4, kernel_size=3, data_format="channels_first"), r"channels_first"),
    (dict(filters=4, kernel_size=0), r"kernel_size=0"),
    (dict(filters=4, kernel_size=(3, 3, 3)), r"kernel_size=\(3, 3, 3\)"),
    (dict(filters=4, kernel_size=3, strides=(1, 0)), r"strides=\(1, 0\)"),
    (dict(filters=4, kernel_size=3, activation="nope"), r"nope"),
    (dict(filters=4, kernel_size=3, kernel_initializer="nope"), r"nope"),
])
def test_conv2d_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.Conv2D(**kwargs)


def test_conv2d_unknown_keyword_and_small_input():
    with pytest.raises(TypeError, match="kernal_size"):
        layers.Conv2D(4, 3, kernal_size=3)
    layer = layers.Conv2D(4, (3, 3), dilation_rate=2)
    with pytest.raises(ValueError, match=r"\(None, 4, 9, 1\)"):  # dilated span 5 > 4 rows
        _core.LayerHarness(layer, [[4, 9, 1]])
    with pytest.raises(ValueError, match=r"\(None, 9, 9\)"):
        _core.LayerHarness(layers.Conv2D(4, 3), [[9, 9]])


# ----- a small CNN learns -----------------------------------------------------------------------------

def quadrant_data(n, rng):
    """8x8 noisy images with a bright 3x3 square in one of the four quadrants (the label)."""
    x = rng.normal(scale=0.3, size=(n, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 4, size=n)
    for i, q in enumerate(y):
        r0 = (q // 2) * 4 + rng.integers(0, 2)
        c0 = (q % 2) * 4 + rng.integers(0, 2)
        x[i, r0:r0 + 3, c0:c0 + 3, 0] += 2.0
    return x, y.astype(np.int64)


def test_small_cnn_learns_which_quadrant():
    rng = np.random.default_rng(0)
    x, y = quadrant_data(512, rng)
    x_test, y_test = quadrant_data(256, rng)
    signcore.utils.set_random_seed(0)
    model = signcore.Sequential([
        layers.Conv2D(6, 3, activation="relu", padding="same", input_shape=(8, 8, 1)),
        layers.Conv2D(4, 3, strides=2, activation="relu"),
        layers.Flatten(),
        layers.Dense(4, activation="softmax"),
    ])
    model.compile(optimizer=signcore.optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    assert acc >= 0.95


# ----- activation fusion ------------------------------------------------------------------------------
# A Conv2D without an activation whose output only an Activation layer reads applies that activation
# itself (Model.fuse_activations in model.cpp); the Activation node is skipped.

def _two_ways(act, builder):
    """The same network written as Conv2D(activation=act) and as Conv2D + Activation(act), with the
    same weights, compiled alike."""
    models = []
    for separate in (False, True):
        signcore.utils.set_random_seed(3)
        inp = layers.Input((9, 8, 3))
        out = builder(inp, act, separate)
        model = signcore.models.Model(inp, out)
        model.compile(optimizer=signcore.optimizers.SGD(0.05), loss="mse")
        models.append(model)
    models[1].set_weights(models[0].get_weights())
    return models


def _conv_act(h, act, separate, filters=8, **kw):
    if separate:
        return layers.Activation(act)(layers.Conv2D(filters, 3, padding="same", **kw)(h))
    return layers.Conv2D(filters, 3, padding="same", activation=act, **kw)(h)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "softmax", "gelu"])
def test_conv_activation_fusion_matches_the_fused_argument(act):
    """Conv2D + Activation(act) predicts and trains exactly as Conv2D(activation=act), and the
    Activation nodes are the ones fused (profile reports them)."""
    def build(inp, a, separate):
        h = _conv_act(inp, a, separate)
        h = _conv_act(h, a, separate, filters=16)
        return layers.Dense(2)(layers.Flatten()(h))

    fused_arg, separate = _two_ways(act, build)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 9, 8, 3)).astype(np.float32)
    y = rng.normal(size=(6, 2)).astype(np.float32)
    np.testing.assert_allclose(separate.predict_on_batch(x), fused_arg.predict_on_batch(x), rtol=1e-6, atol=1e-6)
    for _ in range(3):
        np.testing.assert_allclose(separate.train_on_batch(x, y), fused_arg.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(separate.get_weights(), fused_arg.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    report = separate.profile(x, y, steps=1, print_table=False)
    names = [layer.name for layer in separate.layers]
    convs = [n for n in names if n.startswith("conv2d")]
    acts = [n for n in names if n.startswith("activation")]
    assert report["fused"] == dict(zip(acts, convs))
    assert all(f == b == 0 for n, _, f, b in report["layers"] if n in acts)
    # The layers' own configs are untouched.
    assert all(separate.get_layer(n).get_config()["activation"] == "linear" for n in convs)


def test_conv_activation_fusion_only_where_it_is_safe():
    """No fusion when the convolution has its own activation or when the Activation is the
    model's output (signcore has no merge layers yet, so a second reader of a convolution's output
    cannot be built); the results match the same function in PyTorch."""
    signcore.utils.set_random_seed(1)
    inp = layers.Input((6, 6, 2))
    own = layers.Conv2D(8, 3, padding="same", activation="relu", name="own")(inp)
    h = layers.Activation("tanh", name="after_own")(own)       # the conv has its own activation
    last = layers.Conv2D(8, 3, padding="same", name="last")(h)
    out = layers.Activation("sigmoid", name="out_act")(last)   # the model's output
    model = signcore.models.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(2).normal(size=(3, 6, 6, 2)).astype(np.float32)
    report = model.profile(x, np.zeros((3, 6, 6, 8), np.float32), steps=1, print_table=False)
    assert report["fused"] == {}
    w = {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}

    def conv(t, name):
        k, b = (torch.tensor(v) for v in w[name])
        return F.conv2d(t, k.permute(3, 2, 0, 1), b, padding=1)

    t = torch.tensor(x).permute(0, 3, 1, 2)
    expected = torch.sigmoid(conv(torch.tanh(torch.relu(conv(t, "own"))), "last"))
    np.testing.assert_allclose(model.predict_on_batch(x), expected.permute(0, 2, 3, 1).numpy(),
                               rtol=1e-5, atol=1e-5)
