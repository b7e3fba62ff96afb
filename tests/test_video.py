"""signcore.video: frame sampling, decoding, resizing, clip datasets and per-frame features.

Exact checks use uncompressed AVI clips written here (every pixel known); the real WLASL MP4 clips
(../shared/datasets/wlasl_clips.tar, H.264) check the sampling rule, padding and the manifest.
Resizing is compared with PyTorch's bilinear interpolation (the same half-pixel rule as OpenCV's
INTER_LINEAR), features with a NumPy forward pass written from the layer equations.
"""
import csv
import struct
import tarfile

import numpy as np
import pytest
import torch

import signcore
from signcore import layers, video


# ------------------------------------------------------------------------------------------------
# Fixtures

def write_avi(path, frames, fps=10, claimed_frames=None):
    """An uncompressed 24-bit AVI: frames (n, h, w, 3) uint8 RGB, stored bottom-up BGR as AVI does.

    claimed_frames: the frame count written into the headers (to imitate containers whose count is
    only an estimate).
    """
    frames = np.asarray(frames, np.uint8)
    n, h, w, _ = frames.shape
    stride = (w * 3 + 3) & ~3
    size = stride * h
    claimed = n if claimed_frames is None else claimed_frames

    def chunk(tag, data):
        return tag + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def lst(tag, data):
        return b"LIST" + struct.pack("<I", len(data) + 4) + tag + data

    avih = struct.pack("<14I", 1000000 // fps, size * fps, 0, 0x10, claimed, 0, 1, size, w, h, 0, 0, 0, 0)
    strh = (b"vids" + b"DIB " + struct.pack("<IHHIIIIIIII", 0, 0, 0, 0, 1, fps, 0, claimed, size, 0xFFFFFFFF, 0)
            + struct.pack("<4h", 0, 0, w, h))
    strf = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, size, 0, 0, 0, 0)
    hdrl = lst(b"hdrl", chunk(b"avih", avih) + lst(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))
    movi, index, offset = b"", b"", 4
    for f in frames:
        rows = np.zeros((h, stride), np.uint8)
        rows[:, : w * 3] = f[::-1, :, ::-1].reshape(h, w * 3)
        c = chunk(b"00db", rows.tobytes())
        index += b"00db" + struct.pack("<III", 0x10, offset, size)
        movi += c
        offset += len(c)
    body = b"AVI " + hdrl + lst(b"movi", movi) + chunk(b"idx1", index)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.fixture(scope="module")
def avi_frames():
    return np.random.default_rng(7).integers(0, 256, (25, 24, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def avi_clip(tmp_path_factory, avi_frames):
    return write_avi(tmp_path_factory.mktemp("avi") / "clip.avi", avi_frames)


@pytest.fixture(scope="module")
def wlasl_clips(tmp_path_factory, shared_datasets):
    """wlasl_clips.tar extracted once into a temporary folder."""
    root = tmp_path_factory.mktemp("wlasl_clips")
    with tarfile.open(shared_datasets / "wlasl_clips.tar") as tar:
        tar.extractall(root, filter="data")
    return root


def expected_indices(n, t):
    """The documented rule, written independently: round-half-up of linspace(0, n-1, t)."""
    if n < t:
        return list(range(n))
    if t == 1:
        return [0]
    from fractions import Fraction
    return [int(Fraction(k * (n - 1), t - 1) + Fraction(1, 2)) for k in range(t)]


def unit(a):
    return (np.asarray(a, np.float32) / np.float32(255)).astype(np.float32)


def torch_bilinear(frames_u8, size):
    t = torch.tensor(np.asarray(frames_u8, np.float64)).permute(0, 3, 1, 2)
    out = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=False)
    return out.permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------------------------------------
# Sampling rule

@pytest.mark.parametrize("n,t", [(25, 20), (20, 20), (100, 20), (7, 3), (38, 20), (5, 1), (3, 8), (0, 4), (2, 2)])
def test_sample_indices_follow_the_documented_rule(n, t):
    got = video.sample_indices(n, t)
    assert got.tolist() == expected_indices(n, t)
    if n >= t:
        assert got[0] == 0 and (t == 1 or got[-1] == n - 1)
        assert len(set(got.tolist())) == t


def test_sample_indices_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_frames"):
        video.sample_indices(10, 0)
    with pytest.raises(ValueError, match="frame_count"):
        video.sample_indices(-1, 3)


# ------------------------------------------------------------------------------------------------
# Decoding an exactly known clip

def test_native_size_frames_are_exact_rgb(avi_clip, avi_frames):
    frames, mask = video.load_frames(avi_clip, num_frames=20, size=None)
    idx = expected_indices(25, 20)
    assert frames.dtype == np.float32 and frames.shape == (20, 24, 32, 3)
    assert mask.dtype == np.bool_ and mask.all()
    np.testing.assert_array_equal(frames, unit(avi_frames[idx]))
    # a BGR result would fail: the channels of this random clip differ
    assert np.abs(frames - unit(avi_frames[idx][..., ::-1])).max() > 0.5


def test_short_clip_is_padded_with_zero_frames_and_masked(avi_clip, avi_frames):
    frames, mask = video.load_frames(avi_clip, num_frames=30, size=None)
    assert mask.tolist() == [True] * 25 + [False] * 5
    np.testing.assert_array_equal(frames[:25], unit(avi_frames))
    assert not frames[25:].any()


def test_container_frame_count_is_not_trusted(tmp_path, avi_frames):
    # The headers claim 40 frames; only 25 exist. Sampling must use the 25 that decode.
    clip = write_avi(tmp_path / "overstated.avi", avi_frames, claimed_frames=40)
    assert video.video_info(clip)["frame_count"] == 40
    assert video.count_frames(clip) == 25
    frames, mask = video.load_frames(clip, num_frames=20, size=None)
    assert mask.all()
    np.testing.assert_array_equal(frames, unit(avi_frames[expected_indices(25, 20)]))
    frames, mask = video.load_frames(clip, num_frames=30, size=None)
    assert mask.sum() == 25


def test_video_info(avi_clip):
    info = video.video_info(avi_clip)
    assert (info["frame_count"], info["width"], info["height"]) == (25, 32, 24)
    assert info["fps"] == pytest.approx(10.0)


@pytest.mark.parametrize("size", [(15, 21), (40, 50)])
def test_resize_is_bilinear_with_half_pixel_centres(avi_clip, avi_frames, size):
    frames, _ = video.load_frames(avi_clip, num_frames=7, size=size)
    expected = torch_bilinear(avi_frames[expected_indices(25, 7)], size)
    assert frames.shape == (7,) + size + (3,)
    # OpenCV resizes the 8-bit frame: within one grey level of the exact interpolation
    assert np.abs(frames * 255 - expected).max() <= 1.0 + 1e-4


def test_crop_to_aspect_ratio_takes_the_centred_region(avi_clip, avi_frames):
    frames, _ = video.load_frames(avi_clip, num_frames=4, size=(10, 10), crop_to_aspect_ratio=True)
    centre = avi_frames[expected_indices(25, 4)][:, :, 4:28]  # 24x32 -> the centred 24x24
    assert np.abs(frames * 255 - torch_bilinear(centre, (10, 10))).max() <= 1.0 + 1e-4


def test_nearest_interpolation_at_integer_factor(avi_clip, avi_frames):
    frames, _ = video.load_frames(avi_clip, num_frames=3, size=(12, 16), interpolation="nearest")
    src = avi_frames[expected_indices(25, 3)]
    np.testing.assert_array_equal(frames, unit(src[:, ::2, ::2]))


def test_errors_name_the_file_and_the_argument(tmp_path, avi_clip):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        video.load_frames(tmp_path / "missing.mp4")
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video file" * 10)
    with pytest.raises(OSError, match="not_a_video.mp4"):
        video.load_frames(bad)
    with pytest.raises(ValueError, match="num_frames"):
        video.load_frames(avi_clip, num_frames=0)
    with pytest.raises(ValueError, match="size"):
        video.load_frames(avi_clip, size=(10,))
    with pytest.raises(ValueError, match="interpolation"):
        video.load_frames(avi_clip, size=(8, 8), interpolation="cubic-ish")


# ------------------------------------------------------------------------------------------------
# Real H.264 clips

def test_real_clip_sampling_matches_the_full_decode(wlasl_clips):
    clip = wlasl_clips / "osushi" / "07074.mp4"  # the container claims 41 frames; 38 decode
    n = video.count_frames(clip)
    assert n == 38 and video.video_info(clip)["frame_count"] == 41
    everything, mask = video.load_frames(clip, num_frames=n, size=None)
    assert mask.all() and everything.shape == (38, 192, 288, 3)
    assert 0.0 <= everything.min() and everything.max() <= 1.0 and everything.std() > 0.05
    sampled, mask = video.load_frames(clip, num_frames=20, size=None)
    np.testing.assert_array_equal(sampled, everything[expected_indices(38, 20)])
    padded, mask = video.load_frames(clip, num_frames=45, size=None)
    assert mask.sum() == 38 and not mask[38:].any()
    np.testing.assert_array_equal(padded[:38], everything)
    assert not padded[38:].any()
    small, _ = video.load_frames(clip, num_frames=20, size=(150, 150))
    expected = torch_bilinear(np.rint(everything[expected_indices(38, 20)] * 255), (150, 150))
    assert np.abs(small * 255 - expected).max() <= 1.0 + 1e-3


def test_manifest_lists_the_labelled_clips(wlasl_clips):
    manifest = wlasl_clips / "manifest.csv"
    paths, labels, names = video.list_clips(manifest)
    with open(manifest, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["gloss"]]
    assert len(paths) == len(rows) == 42
    assert names == sorted({r["gloss"] for r in rows})
    for p, y, r in zip(paths, labels, rows):
        assert p == str(wlasl_clips / r["path"])
        assert names[y] == r["gloss"]
    # choosing classes keeps only their rows, in the given label order
    paths, labels, names = video.list_clips(manifest, class_names=["visit", "computer"])
    assert names == ["visit", "computer"] and len(paths) == 4
    assert sorted(labels.tolist()) == [0, 0, 1, 1]


def test_clip_dataset_from_a_manifest_csv(wlasl_clips):
    small = ["osushi/07074.mp4", "osushi/3/05743.mp4", "osushi/12/27214.mp4", "osushi/9/13640.mp4"]
    with open(wlasl_clips / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["path"] in small]
    subset = wlasl_clips / "subset.csv"
    with open(subset, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    frames, masks, labels, names, paths = video.clip_dataset(subset, num_frames=50, size=(32, 40),
                                                             return_paths=True)
    assert frames.shape == (4, 50, 32, 40, 3) and frames.dtype == np.float32
    assert names == sorted(r["gloss"] for r in rows)
    for i, p in enumerate(paths):
        n = video.count_frames(p)
        assert masks[i].tolist() == [True] * min(n, 50) + [False] * max(0, 50 - n)
        assert not frames[i][~masks[i]].any()
        one, mask = video.load_frames(p, num_frames=50, size=(32, 40))
        np.testing.assert_array_equal(frames[i], one)  # the parallel batch decodes exactly as one clip


def test_clip_dataset_from_class_folders(wlasl_clips):
    folder = wlasl_clips / "dun"
    paths, labels, names = video.list_clips(folder)
    assert names == ["computer", "drink", "enjoy", "language", "sunday", "visit"]
    assert len(paths) == 11 and np.bincount(labels).tolist() == [2, 1, 2, 2, 2, 2]
    frames, masks, labels2, _ = video.clip_dataset(folder, num_frames=20, size=(24, 24),
                                                   class_names=["sunday", "enjoy"])
    assert frames.shape == (4, 20, 24, 24, 3) and labels2.tolist() == [0, 0, 1, 1]
    assert masks.sum(axis=1).tolist() == [19, 20, 20, 20]  # 55768.mp4 has 19 frames


def test_clip_dataset_errors(tmp_path, wlasl_clips):
    bad = tmp_path / "list.csv"
    bad.write_text("path,gloss\nnowhere/clip.mp4,hello\n")
    with pytest.raises(FileNotFoundError, match="clip.mp4"):
        video.clip_dataset(bad)
    bad.write_text("name,word\nx.mp4,hello\n")
    with pytest.raises(ValueError, match="path column"):
        video.clip_dataset(bad)
    with pytest.raises(ValueError, match="size"):
        video.clip_dataset(wlasl_clips / "dun", size=None)
    with pytest.raises(FileNotFoundError):
        video.clip_dataset(tmp_path / "absent")


# ------------------------------------------------------------------------------------------------
# Per-frame features

def conv_relu_gap(x, kernel, bias):
    """NumPy forward of Conv2D(valid, stride 1, relu) + GlobalAveragePooling2D. x: (M, H, W, C)."""
    kh, kw = kernel.shape[:2]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # (M, H', W', C, kh, kw)
    y = np.einsum("mijcab,abcf->mijf", win.astype(np.float64), kernel.astype(np.float64)) + bias
    return np.maximum(y, 0.0)


@pytest.fixture
def frame_cnn():
    signcore.utils.set_random_seed(3)
    return signcore.Sequential([
        signcore.Input((8, 8, 3)),
        layers.Conv2D(4, 3, activation="relu", name="conv"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(5, activation="softmax", name="classifier"),
    ])


def test_extract_features_default_layer_is_before_the_classifier(frame_cnn, rng):
    frames = rng.random((3, 4, 8, 8, 3), dtype=np.float32)
    masks = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)
    feats = video.extract_features(frame_cnn, frames, masks, batch_size=2)
    kernel, bias = frame_cnn.get_weights()[:2]
    expected = conv_relu_gap(frames.reshape(-1, 8, 8, 3), kernel, bias).mean(axis=(1, 2)).reshape(3, 4, 4)
    assert feats.shape == (3, 4, 4) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[masks], expected[masks], rtol=1e-5, atol=1e-6)
    assert not feats[~masks].any()  # masked frames are skipped and left at zero


def test_extract_features_at_a_named_layer_flattens(frame_cnn, rng):
    frames = rng.random((2, 3, 8, 8, 3), dtype=np.float32)
    feats = video.extract_features(frame_cnn, frames, layer_name="conv")
    kernel, bias = frame_cnn.get_weights()[:2]
    expected = conv_relu_gap(frames.reshape(-1, 8, 8, 3), kernel, bias).reshape(2, 3, 6 * 6 * 4)
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    one = video.extract_features(frame_cnn, frames[1], layer_name="conv")  # a single clip (T, H, W, C)
    np.testing.assert_allclose(one, feats[1], rtol=1e-6, atol=1e-7)


def test_feature_extractor_copies_weights_and_leaves_the_model_alone(frame_cnn, rng):
    extractor = video.feature_extractor(frame_cnn, "gap")
    assert [l.name for l in extractor.layers] == ["conv", "gap"]
    x = rng.random((5, 8, 8, 3), dtype=np.float32)
    before = extractor.predict(x, verbose=0)
    weights = frame_cnn.get_weights()
    frame_cnn.set_weights([w + 1.0 for w in weights])  # the extractor holds its own copies
    np.testing.assert_array_equal(extractor.predict(x, verbose=0), before)
    frame_cnn.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    frame_cnn.fit(x, np.arange(5) % 5, epochs=1, verbose=0)  # the original is still trainable


def test_feature_extractor_on_a_functional_model(rng):
    signcore.utils.set_random_seed(4)
    inp = signcore.Input((6,))
    hidden = layers.Dense(3, activation="tanh", name="hidden")(inp)
    out = layers.Dense(2, activation="softmax", name="probs")(hidden)
    model = signcore.Model(inp, out)
    x = rng.random((7, 6), dtype=np.float32)
    w, b = model.get_weights()[:2]
    extractor = video.feature_extractor(model)  # default: the input of the softmax layer
    assert [l.name for l in extractor.layers] == ["hidden"]
    np.testing.assert_allclose(extractor.predict(x, verbose=0), np.tanh(x @ w + b), rtol=1e-5, atol=1e-6)


def test_extract_features_errors(frame_cnn, rng):
    with pytest.raises(ValueError, match="No such layer: 'nope'"):
        video.extract_features(frame_cnn, rng.random((1, 2, 8, 8, 3)), layer_name="nope")
    with pytest.raises(ValueError, match=r"takes frames of shape \(8, 8, 3\)"):
        video.extract_features(frame_cnn, rng.random((1, 2, 9, 9, 3)))
    with pytest.raises(ValueError, match="masks must have shape"):
        video.extract_features(frame_cnn, rng.random((1, 2, 8, 8, 3)), masks=np.ones((2, 2), bool))


def test_features_from_real_clips(wlasl_clips, frame_cnn):
    frames, masks, labels, names = video.clip_dataset(wlasl_clips / "dun", num_frames=20, size=(8, 8),
                                                      class_names=["sunday"])
    feats = video.extract_features(frame_cnn, frames, masks)
    assert feats.shape == (2, 20, 4)
    assert (feats[masks] != 0).any() and not feats[~masks].any()
    expected = video.feature_extractor(frame_cnn).predict(frames[0], verbose=0)
    np.testing.assert_allclose(feats[0], expected, rtol=1e-6, atol=1e-7)
