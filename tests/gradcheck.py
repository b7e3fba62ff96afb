"""Finite-difference gradient checks, shared by the layer, loss and model tests.

Central differences, ``(f(x + eps) - f(x - eps)) / (x+ - x-)``, where ``x+ - x-`` is the step that
float32 actually took, compared with the analytic gradient under a relative and an absolute
tolerance: ``|analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|)`` element-wise.
Layers compute in float32, so the defaults (eps 5e-3, rtol 1e-2, atol 1e-3) are set for float32
round-off; an activation with a kink (relu, leaky_relu, hard_sigmoid) needs inputs at least a few
eps away from it, which is the caller's job.

API
---
``numeric_gradient(f, x, eps=5e-3, indices=None) -> np.ndarray (float64, x's shape)``
    d f() / d x for a scalar function ``f`` of no arguments that reads the array ``x``; ``x`` is
    perturbed in place one element at a time and restored. ``indices`` (flat) limits the elements
    checked; the others are left 0.

``check_gradient(value_fn, grad_fn, inputs, *, eps=5e-3, rtol=1e-2, atol=1e-3, wrt=None,
max_checks=None, seed=0, names=None)``
    For any differentiable function of arrays. ``value_fn(*inputs) -> float``;
    ``grad_fn(*inputs) -> sequence`` with one gradient per input (None where not provided).
    ``wrt`` lists the input positions to check (default: every one whose gradient is not None).
    E.g. a loss: ``check_gradient(lambda p: loss(y, p), lambda p: [dloss(y, p)], [y_pred])``.

``check_layer(layer, input_shapes, *, inputs=None, params=None, batch=3, training=False, seed=0,
eps=5e-3, rtol=1e-2, atol=1e-3, max_checks=None, rng=None, check_weights=True, input_fn=None)
-> (harness, dy)``
    Builds ``layer`` in a ``signcore._core.LayerHarness`` for ``input_shapes`` (per sample, no batch
    axis; one per input), draws inputs (or takes ``inputs``, or calls ``input_fn(shapes, rng)``),
    loads ``params`` (all weights flat, in declaration order) if given, draws a random upstream
    gradient ``dy``, then checks, for ``L = sum(dy * layer(inputs))``:
      * dL/dx for every input, and dL/dw for every trainable weight, against central differences
        (in training mode the forward uses the fixed ``seed`` every time, so dropout masks repeat);
      * the contract of layer.hpp: weight gradients ACCUMULATE (a second backward without zeroing
        doubles them), dx is overwritten rather than added to, and a null dinput (``need=False``)
        leaves the weight gradients unchanged.
    Returns the harness (built, after a forward on the inputs) and ``dy`` for further checks.

``check_masked_layer(layer, shape, *, batch, rng, mask=None, training=False, seed=0, scale=0.5,
max_checks=None)``
    For layers that take a sequence mask (recurrent layers): random normal weights (``scale``) and
    inputs ``(batch,) + shape``, then dL/dx and dL/dw of ``L = sum(dy * layer(x, mask))`` against
    central differences (``max_checks`` random elements per array, default all), dx exactly 0 on
    masked steps, and the same contract checks as ``check_layer``.

``assert_grad_close(analytic, numeric, *, rtol, atol, what, mask=None)``
    The comparison itself, with a message naming the worst elements.
"""
import numpy as np

DEFAULT_EPS = 5e-3
DEFAULT_RTOL = 1e-2
DEFAULT_ATOL = 1e-3

__all__ = ["DEFAULT_ATOL", "DEFAULT_EPS", "DEFAULT_RTOL", "assert_grad_close", "check_gradient",
           "check_layer", "check_masked_layer", "numeric_gradient"]


def _pick(size, max_checks, rng):
    """Flat indices to check: all of them, or a random subset of `max_checks`."""
    if max_checks is None or size <= max_checks:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_checks, replace=False))


def numeric_gradient(f, x, eps=DEFAULT_EPS, indices=None):
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x`` (in place)."""
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numeric_gradient needs a contiguous array it can perturb in place")
    grad = np.zeros(flat.shape, dtype=np.float64)
    for i in (range(flat.size) if indices is None else indices):
        orig = flat[i].copy()
        flat[i] = orig + eps
        hi = flat[i].copy()
        f_hi = float(f())
        flat[i] = orig - eps
        lo = flat[i].copy()
        f_lo = float(f())
        flat[i] = orig
        grad[i] = (f_hi - f_lo) / (float(hi) - float(lo))
    return grad.reshape(x.shape)


def assert_grad_close(analytic, numeric, *, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL, what="gradient",
                      mask=None):
    """Assert |a - n| <= atol + rtol * max(|a|, |n|) element-wise (only where ``mask`` is True)."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise AssertionError(f"{what}: analytic shape {a.shape} != numeric shape {n.shape}")
    if not np.all(np.isfinite(a)):
        raise AssertionError(f"{what}: analytic gradient has non-finite values:\n{a}")
    err = np.abs(a - n)
    bad = err > atol + rtol * np.maximum(np.abs(a), np.abs(n))
    if mask is not None:
        bad &= np.asarray(mask, dtype=bool).reshape(bad.shape)
    if bad.any():
        idx = np.argwhere(bad)[:5]
        rows = "\n".join(f"  at {tuple(int(v) for v in i)}: analytic {a[tuple(i)]:.6g}, "
                         f"numeric {n[tuple(i)]:.6g}" for i in idx)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} elements differ "
                             f"(rtol={rtol}, atol={atol}); first ones:\n{rows}")


def check_gradient(value_fn, grad_fn, inputs, *, eps=DEFAULT_EPS, rtol=DEFAULT_RTOL,
                   atol=DEFAULT_ATOL, wrt=None, max_checks=None, seed=0, names=None):
    """Check ``grad_fn`` against central differences of ``value_fn`` for each input in ``wrt``."""
    rng = np.random.default_rng(seed)
    inputs = [np.array(x, copy=True, order="C") for x in inputs]
    grads = list(grad_fn(*inputs))
    if len(grads) != len(inputs):
        raise AssertionError(f"grad_fn returned {len(grads)} gradients for {len(inputs)} inputs")
    if wrt is None:
        wrt = [k for k, g in enumerate(grads) if g is not None]
    for k in wrt:
        x = inputs[k]
        idx = _pick(x.size, max_checks, rng)
        num = numeric_gradient(lambda: value_fn(*inputs), x, eps, idx)
        mask = np.zeros(x.size, dtype=bool)
        mask[idx] = True
        name = names[k] if names else f"d/d input {k}"
        assert_grad_close(np.asarray(grads[k]).reshape(x.shape), num, rtol=rtol, atol=atol,
                          what=name, mask=mask)


def check_layer(layer, input_shapes, *, inputs=None, params=None, batch=3, training=False, seed=0,
                eps=DEFAULT_EPS, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL, max_checks=None, rng=None,
                check_weights=True, input_fn=None):
    """Gradient-check one layer through LayerHarness (see the module docstring)."""
    from signcore import _core

    rng = np.random.default_rng(seed) if rng is None else rng
    shapes = [tuple(int(d) for d in s) for s in input_shapes]
    harness = _core.LayerHarness(layer, [list(s) for s in shapes])
    if inputs is None:
        if input_fn is not None:
            inputs = input_fn(shapes, rng)
        else:
            inputs = [rng.normal(size=(batch,) + s) for s in shapes]
    xs = [np.ascontiguousarray(x, dtype=np.float32) for x in inputs]
    if params is not None:
        harness.set_param_values(np.ascontiguousarray(params, dtype=np.float32).reshape(-1))

    def forward():
        return harness.forward(xs, training=training, seed=seed)

    y = forward()
    dy = rng.normal(size=y.shape)

    def loss():
        return float(np.sum(forward().astype(np.float64) * dy))

    dy32 = dy.astype(np.float32)
    dxs = harness.backward(dy32)
    grads = harness.param_grads().astype(np.float64)
    if len(dxs) != len(xs):
        raise AssertionError(f"backward returned {len(dxs)} input gradients for {len(xs)} inputs")

    # dL/dx for every input.
    for k, x in enumerate(xs):
        idx = _pick(x.size, max_checks, rng)
        num = numeric_gradient(loss, x, eps, idx)
        mask = np.zeros(x.size, dtype=bool)
        mask[idx] = True
        assert_grad_close(dxs[k], num, rtol=rtol, atol=atol, mask=mask,
                          what=f"{layer.name}: dL/d input {k}")

    # dL/dw for every trainable weight, through the flat parameter buffer.
    if check_weights:
        values = harness.param_values()
        for name, _shape, trainable, offset, size in harness.weights:
            if not trainable:
                continue
            seg = values[offset:offset + size]  # a view: perturbing it perturbs `values`
            idx = _pick(size, max_checks, rng)

            def loss_w():
                harness.set_param_values(values)
                return loss()

            num = numeric_gradient(loss_w, seg, eps, idx)
            harness.set_param_values(values)
            mask = np.zeros(size, dtype=bool)
            mask[idx] = True
            assert_grad_close(grads[offset:offset + size], num, rtol=rtol, atol=atol, mask=mask,
                              what=f"{layer.name}: dL/d {name}")

    # The contract: accumulate weight gradients, overwrite dx, honour null dinputs.
    forward()
    _check_contract(harness, dy32, len(xs), layer.name)

    forward()  # leave the harness in the state of a plain forward on the inputs
    return harness, dy


def _check_contract(harness, dy32, n_inputs, what):
    """Weight gradients accumulate, dx is overwritten, a null dinput leaves the weights' alone."""
    first = harness.backward(dy32)
    g1 = harness.param_grads()
    second = harness.backward(dy32, zero_grads=False)
    np.testing.assert_allclose(harness.param_grads(), 2 * g1, rtol=1e-5, atol=1e-6,
                               err_msg=f"{what}: weight gradients must accumulate (+=)")
    for k in range(n_inputs):
        np.testing.assert_allclose(second[k], first[k], rtol=1e-6, atol=1e-7,
                                   err_msg=f"{what}: dx must be overwritten, not added to")
    if any(s is not None for s in harness.backward(dy32, need=[False] * n_inputs)):
        raise AssertionError(f"{what}: a skipped input gradient must come back as None")
    np.testing.assert_allclose(harness.param_grads(), g1, rtol=1e-6, atol=1e-7,
                               err_msg=f"{what}: weight gradients changed when dx was not needed")


def check_masked_layer(layer, shape, *, batch, rng, mask=None, training=False, seed=0, scale=0.5,
                       max_checks=None):
    """Gradient-check a layer called with a sequence mask (see the module docstring)."""
    from signcore import _core

    h = _core.LayerHarness(layer, [list(shape)])
    h.set_param_values(rng.normal(scale=scale, size=h.param_values().size).astype(np.float32))
    x = rng.normal(size=(batch,) + tuple(shape)).astype(np.float32)

    def fwd():
        return h.forward([x], training=training, seed=seed, mask=mask)

    dy = rng.normal(size=fwd().shape)

    def loss():
        return float(np.sum(fwd().astype(np.float64) * dy))

    def checked(size):
        idx = None if max_checks is None else _pick(size, max_checks, rng)
        sel = None
        if idx is not None:
            sel = np.zeros(size, dtype=bool)
            sel[idx] = True
        return idx, sel

    dx, = h.backward(dy.astype(np.float32))
    grads = h.param_grads().astype(np.float64)
    idx, sel = checked(x.size)
    assert_grad_close(dx, numeric_gradient(loss, x, indices=idx), mask=sel,
                      what=f"{layer.name}: dL/dx")
    if mask is not None:  # masked steps get no gradient at all
        assert np.all(dx[~np.asarray(mask, bool)] == 0)
    values = h.param_values()
    for name, _shape, _trainable, offset, size in h.weights:
        seg = values[offset:offset + size]

        def loss_w():
            h.set_param_values(values)
            return loss()

        idx, sel = checked(size)
        num = numeric_gradient(loss_w, seg, indices=idx)
        h.set_param_values(values)
        assert_grad_close(grads[offset:offset + size], num, mask=sel, what=f"{layer.name}: dL/d {name}")
    fwd()
    _check_contract(h, dy.astype(np.float32), 1, layer.name)
