"""ImageDataGenerator's transforms against an oracle written from Keras's equations
(keras/src/legacy/preprocessing/image.py): the affine matrix composed as Keras composes it and
applied with scipy.ndimage.affine_transform, PIL's ImageEnhance for brightness, NumPy's
RandomState for the parameter draws, and Keras's Iterator.__getitem__ seeding for whole batches."""
import numpy as np
import pytest
from PIL import Image, ImageEnhance
from scipy import ndimage

import signcore
from signcore.preprocessing.image import ImageDataGenerator

# ---------------------------------------------------------------------------------------------
# The oracle


def keras_matrix(p, h, w):
    """Keras's apply_affine_transform matrix (rotation, shift, shear, zoom about the centre, x/y
    swapped for channels-last), as scipy's (matrix, offset); None when there is no transform."""
    t = None

    def compose(m):
        nonlocal t
        t = m if t is None else t @ m

    if p.get("theta", 0):
        a = np.deg2rad(p["theta"])
        compose(np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]))
    if p.get("tx", 0) or p.get("ty", 0):
        compose(np.array([[1, 0, p.get("tx", 0)], [0, 1, p.get("ty", 0)], [0, 0, 1]]))
    if p.get("shear", 0):
        s = np.deg2rad(p["shear"])
        compose(np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]]))
    if p.get("zx", 1) != 1 or p.get("zy", 1) != 1:
        compose(np.array([[p["zx"], 0, 0], [0, p["zy"], 0], [0, 0, 1]]))
    if t is None:
        return None
    ox, oy = h / 2 - 0.5, w / 2 - 0.5
    t = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]]) @ t @ np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])
    t[:, [0, 1]] = t[:, [1, 0]]
    t[[0, 1]] = t[[1, 0]]
    return t[:2, :2], t[:2, 2]


def ref_affine(x, p, fill_mode="nearest", cval=0.0, order=1):
    m = keras_matrix(p, x.shape[0], x.shape[1])
    if m is None:
        return x
    return np.stack([ndimage.affine_transform(x[..., c], m[0], m[1], order=order, mode=fill_mode, cval=cval)
                     for c in range(x.shape[2])], axis=-1)


def ref_brightness(x, factor):
    """Keras's apply_brightness_shift(x, factor, scale=False), through PIL."""
    x_min, x_max = np.min(x), np.max(x)
    local_scale = x_min < 0 or x_max > 255
    a = np.asarray(x, dtype=np.float32)
    if local_scale:
        a = a - np.min(a)
        m = np.max(a)
        if m != 0:
            a /= m
        a *= 255
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    img = Image.fromarray(a[..., 0].astype("uint8") if mode == "L" else a.astype("uint8"), mode)
    out = np.asarray(ImageEnhance.Brightness(img).enhance(factor), dtype=np.float32)
    if out.ndim == 2:
        out = out[..., None]
    if local_scale:
        out = out / 255 * (x_max - x_min) + x_min
    return out


def ref_apply_transform(g, x, p):
    x = ref_affine(x, p, g.get("fill_mode", "nearest"), g.get("cval", 0.0), g.get("interpolation_order", 1))
    if p.get("channel_shift_intensity") is not None:
        x = np.clip(x + p["channel_shift_intensity"], np.min(x), np.max(x))
    if p.get("flip_horizontal"):
        x = x[:, ::-1]
    if p.get("flip_vertical"):
        x = x[::-1]
    if p.get("brightness") is not None:
        x = ref_brightness(x, p["brightness"])
    return x


def ref_random_transform(g, shape, rs):
    """Keras's get_random_transform with `rs` standing in for NumPy's global generator."""
    theta = rs.uniform(-g["rotation_range"], g["rotation_range"]) if g.get("rotation_range") else 0

    def shift(r, size):
        if not r:
            return 0
        try:
            t = rs.choice(r)
            t *= rs.choice([-1, 1])
        except ValueError:
            t = rs.uniform(-r, r)
        if np.max(r) < 1:
            t *= size
        return t

    tx = shift(g.get("height_shift_range", 0), shape[0])
    ty = shift(g.get("width_shift_range", 0), shape[1])
    shear = rs.uniform(-g["shear_range"], g["shear_range"]) if g.get("shear_range") else 0
    z = g.get("zoom_range", 0)
    z = [1 - z, 1 + z] if np.isscalar(z) else list(z)
    zx, zy = (1, 1) if z == [1, 1] else rs.uniform(z[0], z[1], 2)
    fh = (rs.random() < 0.5) * g.get("horizontal_flip", False)
    fv = (rs.random() < 0.5) * g.get("vertical_flip", False)
    cs = rs.uniform(-g["channel_shift_range"], g["channel_shift_range"]) if g.get("channel_shift_range") else None
    b = g.get("brightness_range")
    br = rs.uniform(b[0], b[1]) if b is not None else None
    return dict(theta=theta, tx=tx, ty=ty, shear=shear, zx=zx, zy=zy, flip_horizontal=fh, flip_vertical=fv,
                channel_shift_intensity=cs, brightness=br)


def ref_standardize(g, x):
    if g.get("preprocessing_function"):
        x = g["preprocessing_function"](x)
    if g.get("rescale"):
        x = x * g["rescale"]
    if g.get("samplewise_center") or g.get("samplewise_std_normalization"):
        x = x - np.mean(x, keepdims=True)
    if g.get("samplewise_std_normalization"):
        x = x / (np.std(x, keepdims=True) + 1e-6)
    return x


class KerasFlow:
    """Keras's NumpyArrayIterator.__getitem__ / on_epoch_end, drawing from a private RandomState."""

    def __init__(self, x, y, g, batch_size, shuffle, seed):
        self.x, self.y, self.g, self.bs, self.shuffle, self.seed = x, y, g, batch_size, shuffle, seed
        self.rs = np.random.RandomState(0)
        self.total = 0
        self.index_array = None

    def _set_index_array(self):
        self.index_array = self.rs.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))

    def __getitem__(self, idx):
        self.rs.seed(self.seed + self.total)
        self.total += 1
        if self.index_array is None:
            self._set_index_array()
        ia = self.index_array[self.bs * idx:self.bs * (idx + 1)]
        out = []
        for j in ia:
            xi = self.x[j].astype(np.float32)
            p = ref_random_transform(self.g, xi.shape, self.rs)
            out.append(ref_standardize(self.g, ref_apply_transform(self.g, xi, p)))
        return np.stack(out).astype(np.float32), self.y[ia]

    def on_epoch_end(self):
        self._set_index_array()


def params(**kw):
    p = dict(theta=0, tx=0, ty=0, shear=0, zx=1, zy=1, flip_horizontal=0, flip_vertical=0,
             channel_shift_intensity=None, brightness=None)
    p.update(kw)
    return p


@pytest.fixture
def image(rng):
    """A non-square RGB image with values 0..255 (float32)."""
    return (rng.random((19, 23, 3)) * 255).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The warp


FULL = params(theta=17.3, tx=3.3, ty=-2.1, shear=8.0, zx=0.85, zy=1.2)
FAR = params(theta=-41.0, tx=1.5, ty=4.0, shear=-12.0, zx=3.7, zy=2.9)  # samples far outside the image


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("p", [FULL, FAR], ids=["full", "far"])
def test_warp_matches_scipy_in_every_fill_mode(image, fill_mode, order, p):
    gen = ImageDataGenerator(fill_mode=fill_mode, cval=7.5, interpolation_order=order)
    ours = gen.apply_transform(image, p)
    expected = ref_affine(image, p, fill_mode, 7.5, order)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("p", [params(theta=30.0), params(tx=2.4, ty=-1.3), params(shear=20.0),
                               params(zx=0.7, zy=1.3), params(zx=1.5, zy=1.5)],
                         ids=["rotation", "shift", "shear", "zoom", "zoom_in"])
def test_each_transform_alone_matches_scipy(image, p):
    gen = ImageDataGenerator(fill_mode="constant", cval=0.0)
    np.testing.assert_allclose(gen.apply_transform(image, p), ref_affine(image, p, "constant", 0.0),
                               rtol=1e-5, atol=1e-3)


def test_shift_directions_follow_keras():
    # Keras swaps x and y for channels-last data: tx (drawn from height_shift_range) moves the image
    # along the columns, ty along the rows. out[r, c] = in[r + ty, c + tx].
    x = np.zeros((9, 9, 1), np.float32)
    x[5, 5, 0] = 100.0
    gen = ImageDataGenerator(fill_mode="constant")
    out = gen.apply_transform(x, params(tx=2.0))
    assert out[5, 3, 0] == 100.0 and out.sum() == 100.0
    out = gen.apply_transform(x, params(ty=-1.0))
    assert out[6, 5, 0] == 100.0 and out.sum() == 100.0


def test_quarter_turn_rotates_about_the_centre():
    x = np.arange(25, dtype=np.float32).reshape(5, 5, 1)
    out = ImageDataGenerator().apply_transform(x, params(theta=90.0))
    # Keras's 90 degrees maps out[r, c] = in[c, 4 - r] (a counter-clockwise quarter turn).
    np.testing.assert_allclose(out[..., 0], np.rot90(x[..., 0]), atol=1e-4)


def test_flips_and_channel_shift(image):
    gen = ImageDataGenerator()
    np.testing.assert_array_equal(gen.apply_transform(image, params(flip_horizontal=1)), image[:, ::-1])
    np.testing.assert_array_equal(gen.apply_transform(image, params(flip_vertical=1)), image[::-1])
    out = gen.apply_transform(image, params(channel_shift_intensity=40.0))
    np.testing.assert_allclose(out, np.clip(image + 40.0, image.min(), image.max()), rtol=1e-6)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("factor", [0.55, 1.0, 1.37])
@pytest.mark.parametrize("low,high", [(0, 255), (-40, 300)], ids=["in_range", "rescaled"])
def test_brightness_matches_pil(rng, channels, factor, low, high):
    x = (low + rng.random((11, 13, channels)) * (high - low)).astype(np.float32)
    ours = ImageDataGenerator().apply_transform(x, params(brightness=factor))
    np.testing.assert_allclose(ours, ref_brightness(x, factor), rtol=1e-5, atol=1e-3)


def test_brightness_needs_1_3_or_4_channels(rng):
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        ImageDataGenerator().apply_transform(rng.random((4, 4, 2)), params(brightness=1.2))


# ---------------------------------------------------------------------------------------------
# Random parameters: NumPy's stream, Keras's order

FULL_GEN = dict(rotation_range=20, width_shift_range=0.2, height_shift_range=[3, 5, 7], shear_range=10,
                zoom_range=0.3, horizontal_flip=True, vertical_flip=True, channel_shift_range=9.0,
                brightness_range=(0.5, 1.5))


@pytest.mark.parametrize("g", [FULL_GEN, dict(width_shift_range=5, height_shift_range=2.5, zoom_range=[0.8, 1.1]),
                               dict()], ids=["everything", "int_and_pixel_shifts", "nothing"])
def test_random_parameters_are_keras_draws(g):
    gen = ImageDataGenerator(**g)
    np.random.seed(5)
    ours = [gen.get_random_transform((19, 23, 3)) for _ in range(4)]
    rs = np.random.RandomState(5)
    for o in ours:
        ref = ref_random_transform(g, (19, 23, 3), rs)
        for k, v in ref.items():
            assert (o[k] is None) == (v is None), k
            if v is not None:
                assert o[k] == pytest.approx(float(v), rel=0, abs=0), k
    # The global generator moved exactly as Keras moves it.
    assert np.random.random() == rs.random()


def test_get_random_transform_seed_reseeds_numpy():
    gen = ImageDataGenerator(rotation_range=45)
    a = gen.get_random_transform((8, 8, 3), seed=11)
    b = gen.get_random_transform((8, 8, 3), seed=11)
    assert a == b and a["theta"] == pytest.approx(np.random.RandomState(11).uniform(-45, 45), abs=0)


def test_random_transform_is_the_drawn_transform(image):
    gen = ImageDataGenerator(rotation_range=30, zoom_range=0.2, horizontal_flip=True, fill_mode="reflect")
    p = gen.get_random_transform(image.shape, seed=3)
    np.testing.assert_array_equal(gen.random_transform(image, seed=3), gen.apply_transform(image, p))


# ---------------------------------------------------------------------------------------------
# standardize and fit


def test_standardize_order_and_in_place(rng):
    x = (rng.random((6, 7, 3)) * 255).astype(np.float32)
    gen = ImageDataGenerator(rescale=2.0, samplewise_center=True, featurewise_center=True,
                             featurewise_std_normalization=True, preprocessing_function=lambda a: a + 1)
    gen.mean = np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 1, 3)
    gen.std = np.array([2.0, 4.0, 8.0], np.float32).reshape(1, 1, 3)
    expected = (x + 1) * 2.0
    expected = expected - expected.mean()
    expected = (expected - gen.mean) / (gen.std + 1e-6)
    out = gen.standardize(x.copy())
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)

    plain = ImageDataGenerator(rescale=0.5, samplewise_std_normalization=True)
    y = x.copy()
    assert plain.standardize(y) is y  # float32 input is changed in place, as Keras
    z = x * 0.5
    z = z - z.mean()
    np.testing.assert_allclose(y, z / (z.std() + 1e-6), rtol=1e-5, atol=1e-5)


def test_samplewise_std_turns_centering_on():
    with pytest.warns(UserWarning, match="samplewise_center"):
        gen = ImageDataGenerator(samplewise_std_normalization=True)
    assert gen.samplewise_center


def test_fit_computes_featurewise_statistics(rng):
    x = (rng.random((20, 5, 6, 3)) * 255).astype(np.uint8)
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True, rescale=1 / 255)
    gen.fit(x)
    xs = x.astype(np.float64) / 255
    np.testing.assert_allclose(gen.mean.reshape(-1), xs.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(gen.std.reshape(-1), xs.std(axis=(0, 1, 2)), rtol=1e-4)
    assert gen.mean.shape == (1, 1, 3) and gen.std.shape == (1, 1, 3)
    out = np.stack([gen.standardize(x[i].astype(np.float32)) for i in range(len(x))])
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-3)


def test_unfitted_featurewise_warns(rng):
    gen = ImageDataGenerator(featurewise_center=True)
    with pytest.warns(UserWarning, match="hasn't been fit"):
        gen.flow(rng.random((4, 5, 5, 3)), batch_size=2)


# ---------------------------------------------------------------------------------------------
# flow(): whole batches as Keras produces them


SEED_001 = dict(samplewise_center=True, samplewise_std_normalization=True, horizontal_flip=True)
SEED_002 = dict(rescale=1 / 255, rotation_range=15, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1)


@pytest.mark.parametrize("g", [SEED_001, SEED_002, dict(FULL_GEN, rescale=1 / 255, fill_mode="wrap")],
                         ids=["seed001", "seed002", "everything"])
def test_flow_batches_equal_keras_iterator(rng, g):
    x = (rng.random((22, 12, 14, 3)) * 255).astype(np.uint8)
    y = np.arange(22) * 10
    gen = ImageDataGenerator(**g)
    it = gen.flow(x, y, batch_size=8, shuffle=True, seed=42, workers=2)
    ref = KerasFlow(x, y, g, 8, True, 42)
    assert len(it) == 3
    for epoch in range(2):
        for i in range(len(it)):
            bx, by = it[i]
            rx, ry = ref[i]
            np.testing.assert_array_equal(by, ry)
            np.testing.assert_allclose(bx, rx, rtol=1e-4, atol=1e-4)
        it.on_epoch_end()
        ref.on_epoch_end()
    assert it.total_batches_seen == 6


def test_flow_results_do_not_depend_on_workers(rng):
    x = (rng.random((30, 16, 16, 3)) * 255).astype(np.float32)
    gen = ImageDataGenerator(**SEED_002, horizontal_flip=True, brightness_range=(0.7, 1.3))
    runs = []
    for workers in (0, 1, 3):
        it = gen.flow(x, np.arange(30), batch_size=7, seed=9, workers=workers, max_queue_size=3)
        batches = []
        for _ in range(2):
            batches += [it[i] for i in range(len(it))]
            it.on_epoch_end()
        runs.append(batches)
    for other in runs[1:]:
        for (ax, ay), (bx, by) in zip(runs[0], other):
            np.testing.assert_array_equal(ax, bx)
            np.testing.assert_array_equal(ay, by)


def test_flow_out_of_order_access_equals_in_order(rng):
    x = (rng.random((20, 8, 8, 3)) * 255).astype(np.float32)
    gen = ImageDataGenerator(rotation_range=30)
    a = gen.flow(x, np.arange(20), batch_size=4, seed=1)
    b = gen.flow(x, np.arange(20), batch_size=4, seed=1)
    in_order = [a[i] for i in range(5)]
    # Same calls in the same order give the same batches; a jump re-plans and rewinds.
    assert np.array_equal(b[0][1], in_order[0][1])
    jumped = b[3]
    np.testing.assert_array_equal(jumped[1], in_order[3][1])  # the pass's order is fixed
    assert not np.allclose(jumped[0], in_order[3][0])  # Keras reseeds with the call count


def test_flow_uint8_and_float32_inputs_agree(rng):
    x = (rng.random((9, 10, 10, 3)) * 255).astype(np.uint8)
    gen = ImageDataGenerator(**SEED_002)
    a = gen.flow(x, None, batch_size=4, seed=3)[1]
    b = gen.flow(x.astype(np.float32), None, batch_size=4, seed=3)[1]
    c = gen.flow(x.astype(np.float64), None, batch_size=4, seed=3)[1]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert a.shape == (4, 10, 10, 3) and a.dtype == np.float32


def test_flow_shapes_order_and_iteration(rng):
    x = rng.random((10, 4, 5, 1)).astype(np.float32)
    y = np.array(list("abcdefghij"))
    it = ImageDataGenerator().flow(x, y, batch_size=4, shuffle=False)
    assert len(it) == 3
    bx, by = it[2]
    assert bx.shape == (2, 4, 5, 1) and list(by) == ["i", "j"]  # labels keep their dtype
    np.testing.assert_array_equal(bx, x[8:])
    seen = [next(it)[1] for _ in range(4)]
    assert list(seen[0]) == list("abcd") and list(seen[3]) == list("abcd")  # next() wraps around
    with pytest.raises(ValueError, match="has length 3"):
        it[3]


def test_flow_validation_subset_is_the_first_fraction(rng):
    x = rng.random((10, 3, 3, 3)).astype(np.float32)
    y = np.array([0, 1] * 5)
    gen = ImageDataGenerator(validation_split=0.3)
    val = gen.flow(x, y, batch_size=10, shuffle=False, subset="validation")
    train = gen.flow(x, y, batch_size=10, shuffle=False, subset="training")
    assert val.samples == 3 and train.samples == 7
    np.testing.assert_array_equal(val[0][0], x[:3])
    np.testing.assert_array_equal(train[0][1], y[3:])
    with pytest.raises(ValueError, match="different number of classes"):
        gen.flow(x, np.sort(y), subset="training")


def test_flow_preprocessing_function_runs_before_rescale(rng):
    x = rng.random((6, 4, 4, 3)).astype(np.float32)
    calls = []

    def pf(img):
        calls.append(img.shape)
        return img + 10.0

    gen = ImageDataGenerator(rescale=0.5, preprocessing_function=pf)
    bx = gen.flow(x, batch_size=6, shuffle=False)[0]
    np.testing.assert_allclose(bx, (x + 10.0) * 0.5, rtol=1e-6)
    assert calls == [(4, 4, 3)] * 6

    def bad(img):
        return img[:2]

    with pytest.raises(ValueError, match="shape"):
        ImageDataGenerator(preprocessing_function=bad).flow(x, batch_size=2)[0]


def _small_model(seed):
    signcore.utils.set_random_seed(seed)
    model = signcore.Sequential([signcore.layers.Flatten(input_shape=(6, 6, 1)),
                                 signcore.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=signcore.optimizers.Adam(learning_rate=0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_model_fit_on_flow(rng):
    y = np.arange(64) % 2
    x = (np.where(y[:, None, None, None] == 1, 200.0, 40.0) + rng.normal(0, 20, (64, 6, 6, 1))).astype(np.float32)
    # Without augmentation or shuffling, the iterator feeds exactly the array batches.
    a, b = _small_model(0), _small_model(0)
    ha = a.fit(x * np.float32(1 / 255), y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    hb = b.fit(ImageDataGenerator(rescale=1 / 255).flow(x, y, batch_size=16, shuffle=False), epochs=3, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-6)
    # With augmentation it still learns.
    c = _small_model(1)
    gen = ImageDataGenerator(rescale=1 / 255, horizontal_flip=True, rotation_range=10)
    history = c.fit(gen.flow(x, y, batch_size=16, seed=1), epochs=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    assert c.evaluate(gen.flow(x, y, batch_size=32, seed=2), verbose=0)[1] > 0.9
    assert c.predict(gen.flow(x, batch_size=20, shuffle=False), verbose=0).shape == (64, 2)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="fill_mode"):
        ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="zoom_range"):
        ImageDataGenerator(zoom_range=(0.9,))
    with pytest.raises(ValueError, match="validation_split"):
        ImageDataGenerator(validation_split=1.5)
    with pytest.raises(ValueError, match="channels_last"):
        ImageDataGenerator(data_format="channels_first")
    with pytest.raises(ValueError, match="interpolation_order"):
        ImageDataGenerator(interpolation_order=3)
    with pytest.raises(NotImplementedError, match="zca"):
        ImageDataGenerator(zca_whitening=True)
    gen = ImageDataGenerator()
    with pytest.raises(ValueError, match="rank 4"):
        gen.flow(np.zeros((4, 5, 5)))
    with pytest.raises(ValueError, match="same length"):
        gen.flow(np.zeros((4, 5, 5, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="seed"):
        gen.flow(np.zeros((4, 5, 5, 3)), seed=-1)
