"""signcore.datasets: CIFAR-10, FER-2013, Sign Language MNIST and image-folder loaders, the cache
and the download path.

The real archives in ../shared/datasets are unpacked (once per module, the larger ones only in part)
into temporary folders. Pixels are checked against Pillow, an independent decoder; the CIFAR binary
records against the JPEG copy of the same images; the download against a loopback HTTP server
(nothing here touches the internet).
"""
import gzip
import hashlib
import http.server
import io
import os
import pickle
import re
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from signcore import datasets
from signcore.datasets import cifar10, fer2013, sign_mnist

CIFAR = cifar10.CLASS_NAMES
FER_IDS = {"angry": 0, "disgust": 1, "fear": 2, "happy": 3, "sad": 4, "surprise": 5, "neutral": 6}


# ------------------------------------------------------------------------------------------------
# Fixtures

def extract(archive, dest):
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def tar_files(data):
    """(name, content) of the regular files of an uncompressed ustar archive held in memory.

    A plain header walk: much faster than tarfile for picking a few of tens of thousands of members.
    """
    pos = 0
    while pos + 512 <= len(data) and data[pos:pos + 512] != bytes(512):
        header = data[pos:pos + 512]
        name = header[:100].rstrip(b"\0").decode()
        prefix = header[345:500].rstrip(b"\0").decode()
        size = int(header[124:136].strip(b"\0 ") or b"0", 8)
        pos += 512
        if header[156:157] in (b"0", b"\0"):
            yield (prefix + "/" + name if prefix else name), data[pos:pos + size]
        pos += (size + 511) // 512 * 512


def extract_some(archive, dest, keep):
    """Write the files of a .tar.gz whose name passes `keep` under `dest`."""
    with gzip.open(archive) as f:
        data = f.read()
    for name, content in tar_files(data):
        if keep(name):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(content)
    return dest


@pytest.fixture(scope="module")
def cifar_bin(tmp_path_factory, shared_datasets):
    return extract(shared_datasets / "cifar10_exact_subset_bin.tar.gz", tmp_path_factory.mktemp("cifar_bin"))


@pytest.fixture(scope="module")
def cifar_bin_data(cifar_bin):
    return cifar10.load_data(cifar_bin)


@pytest.fixture(scope="module")
def cifar_jpg(tmp_path_factory, shared_datasets):
    """The first 30 JPEGs of every class in train/ and test/ (0000.jpg .. 0029.jpg)."""
    pattern = re.compile(r"^(train|test)/[a-z]+/00[0-2][0-9]\.jpg$")
    return extract_some(shared_datasets / "cifar10_jpg.tar.gz", tmp_path_factory.mktemp("cifar_jpg"),
                        lambda n: bool(pattern.match(n)))


@pytest.fixture(scope="module")
def fer_subset(tmp_path_factory, shared_datasets):
    """12 faces per emotion in train/; in test/, 6 PublicTest_ and 6 PrivateTest_ per emotion."""
    seen = {}

    def keep(name):
        m = re.match(r"^(train|test)/(\w+)/(Training|PublicTest|PrivateTest)_", name)
        if m is None:
            return False
        seen[m.groups()] = seen.get(m.groups(), 0) + 1
        return seen[m.groups()] <= (12 if m.group(1) == "train" else 6)

    return extract_some(shared_datasets / "fer2013_jpg.tar.gz", tmp_path_factory.mktemp("fer"), keep)


@pytest.fixture(scope="module")
def sign_mnist_abY(tmp_path_factory, shared_datasets):
    pattern = re.compile(r"^sign_mnist_test/[ABY]/")
    return extract_some(shared_datasets / "sign_mnist_test_png.tar.gz", tmp_path_factory.mktemp("sign_mnist"),
                        lambda n: bool(pattern.match(n)))


@pytest.fixture(scope="module")
def ckplus(tmp_path_factory, shared_datasets):
    return extract(shared_datasets / "ckplus48.tar.gz", tmp_path_factory.mktemp("ckplus"))


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """An empty cache and no $SIGNCORE_DATA."""
    monkeypatch.setenv("SIGNCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SIGNCORE_DATA", raising=False)
    return tmp_path / "cache"


class Server:
    """A loopback HTTP server serving `files` (URL path -> bytes) and counting requests."""

    def __init__(self):
        self.files, self.requests = {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def pil(path, mode):
    return np.asarray(Image.open(path).convert(mode))


def python_batches(x, y):
    """CIFAR arrays -> official Python-version batch dicts (bytes keys, (N, 3072) planes)."""
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
    return {b"batch_label": b"test batch", b"labels": [int(v) for v in y[:, 0]], b"data": rows,
            b"filenames": [b"f%d.png" % i for i in range(len(x))]}


def subset(data, n):
    """The first n images of each of the five training batches (1,017 each) and of the test batch."""
    (xt, yt), (xs, ys) = data
    keep = np.concatenate([np.arange(k * 1017, k * 1017 + n) for k in range(5)])
    return (xt[keep], yt[keep]), (xs[:n], ys[:n])


def cifar_python_archive(data):
    """The official archive layout (cifar-10-batches-py/...) as tar.gz bytes, from loaded arrays."""
    (xt, yt), (xs, ys) = data
    n = len(xs)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        parts = [(f"data_batch_{i + 1}", xt[i * n:(i + 1) * n], yt[i * n:(i + 1) * n]) for i in range(5)]
        for name, x, y in parts + [("test_batch", xs, ys)]:
            blob = pickle.dumps(python_batches(x, y), protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def assert_same(a, b):
    (xa, ya), (xta, yta) = a
    (xb, yb), (xtb, ytb) = b
    for u, v in ((xa, xb), (ya, yb), (xta, xtb), (yta, ytb)):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------------------------------------
# CIFAR-10

def test_cifar_binary_records(cifar_bin, cifar_bin_data):
    (x_train, y_train), (x_test, y_test) = cifar_bin_data
    assert x_train.shape == (5 * 1017, 32, 32, 3) and x_test.shape == (1017, 32, 32, 3)
    assert y_train.shape == (5085, 1) and y_test.shape == (1017, 1)
    assert x_train.dtype == y_train.dtype == np.uint8
    for k in range(5):  # batches in order; pixel (r, c, ch) is byte 1 + ch * 1024 + r * 32 + c of a record
        record = (cifar_bin / f"data_batch_{k + 1}_first1017.bin").read_bytes()[:3073]
        assert y_train[k * 1017, 0] == record[0]
        for r, c, ch in ((0, 0, 0), (5, 17, 1), (31, 30, 2)):
            assert x_train[k * 1017, r, c, ch] == record[1 + ch * 1024 + r * 32 + c]


def test_cifar_binary_pixels_match_the_jpeg_copy(cifar_bin_data, cifar_jpg):
    """The k-th image of a class in the original order is <split>/<class>/<k>.jpg in the JPEG copy."""
    for split, (x, y) in zip(("train", "test"), cifar_bin_data):
        seen, diffs, swapped = {}, [], []
        for i in range(300):
            c = int(y[i, 0])
            k = seen.get(c, 0)
            seen[c] = k + 1
            if k < 30:
                ref = pil(cifar_jpg / split / CIFAR[c] / f"{k:04d}.jpg", "RGB").astype(int)
                diffs.append(np.abs(ref - x[i]).mean())
                swapped.append(np.abs(ref - x[i][..., ::-1]).mean())
        # JPEG loss is about 6/255 (datasets README); a wrong layout or channel order is far off
        assert np.mean(diffs) < 8 and max(diffs) < 16
        assert np.mean(swapped) > 2 * np.mean(diffs)


def test_cifar_python_batches_equal_the_binary_ones(tmp_path, cifar_bin_data):
    data = subset(cifar_bin_data, 300)
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(cifar_python_archive(data))
    extract(archive, tmp_path / "unpacked")
    assert_same(cifar10.load_data(tmp_path / "unpacked" / "cifar-10-batches-py"), data)
    assert_same(cifar10.load_data(tmp_path / "unpacked"), data)  # a parent folder is searched


def test_cifar_batch_pickled_by_python2_numpy(tmp_path, cifar_bin_data):
    # The official batches name NumPy 1's module (numpy.core.multiarray) and hold bytes keys.
    (x, y), _ = subset(cifar_bin_data, 50)
    blob = pickle.dumps(python_batches(x[:50], y[:50]), protocol=2)
    legacy = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert legacy != blob
    (tmp_path / "data_batch_1").write_bytes(legacy)
    xb, yb = cifar10.load_batch(tmp_path / "data_batch_1")
    np.testing.assert_array_equal(xb, x[:50])
    np.testing.assert_array_equal(yb, y[:50, 0])


def test_cifar_image_folders(cifar_jpg):
    (x, y), (xt, yt) = cifar10.load_data(cifar_jpg)
    assert x.shape == (300, 32, 32, 3) and xt.shape == (300, 32, 32, 3) and y.shape == (300, 1)
    assert y[:, 0].tolist() == [c for c in range(10) for _ in range(30)]
    expected = np.stack([pil(cifar_jpg / "train" / CIFAR[c] / f"{k:04d}.jpg", "RGB") for c in range(10)
                         for k in range(30)])
    np.testing.assert_array_equal(x, expected)


def test_cifar_archive_path_unpacks_into_the_cache(isolated, shared_datasets, cifar_bin_data):
    data = cifar10.load_data(shared_datasets / "cifar10_exact_subset_bin.tar.gz")
    assert_same(data, cifar_bin_data)
    assert len(os.listdir(isolated / "extracted")) == 1


def test_cifar_found_through_signcore_data(isolated, tmp_path, monkeypatch, cifar_bin, cifar_bin_data):
    folder = tmp_path / "data" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for k in range(1, 6):
        os.symlink(cifar_bin / f"data_batch_{k}_first1017.bin", folder / f"data_batch_{k}.bin")
    os.symlink(cifar_bin / "test_batch_first1017.bin", folder / "test_batch.bin")
    monkeypatch.setenv("SIGNCORE_DATA", str(tmp_path / "data"))
    assert_same(cifar10.load_data(download=False), cifar_bin_data)


def test_cifar_download_verifies_and_caches(isolated, server, monkeypatch, cifar_bin_data):
    cifar_bin_data = subset(cifar_bin_data, 100)
    blob = cifar_python_archive(cifar_bin_data)
    server.files["/cifar-10-python.tar.gz"] = blob
    monkeypatch.setattr(cifar10, "ORIGIN", server.url("/cifar-10-python.tar.gz"))
    monkeypatch.setattr(cifar10, "FILE_HASH", hashlib.md5(blob).hexdigest())
    assert_same(cifar10.load_data(), cifar_bin_data)
    assert server.requests == ["/cifar-10-python.tar.gz"]
    cached = isolated / "datasets" / "cifar-10-python.tar.gz"
    assert cached.read_bytes() == blob
    assert sorted(os.listdir(isolated / "datasets")) == ["cifar-10-python", "cifar-10-python.tar.gz"]
    assert_same(cifar10.load_data(), cifar_bin_data)  # the second call reads the cache
    assert len(server.requests) == 1


def test_cifar_download_with_a_wrong_checksum_leaves_nothing(isolated, server, monkeypatch):
    server.files["/c.tar.gz"] = b"not the archive"
    monkeypatch.setattr(cifar10, "ORIGIN", server.url("/c.tar.gz"))
    monkeypatch.setattr(cifar10, "FILE_HASH", "0" * 32)
    with pytest.raises(OSError, match="md5"):
        cifar10.load_data()
    assert os.listdir(isolated / "datasets") == []  # no partial or unverified file
    monkeypatch.setattr(cifar10, "ORIGIN", server.url("/missing.tar.gz"))
    with pytest.raises(OSError, match="missing.tar.gz"):
        cifar10.load_data()
    with pytest.raises(FileNotFoundError, match="download=False"):
        cifar10.load_data(download=False)


def test_cifar_refuses_malicious_and_damaged_batches(tmp_path, cifar_bin):
    marker = tmp_path / "was_run"

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    folder = tmp_path / "py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match="Refusing to load 'posix.mkdir'"):
        cifar10.load_data(folder)
    assert not marker.exists()
    damaged = tmp_path / "bin"
    damaged.mkdir()
    for k in range(1, 6):
        os.symlink(cifar_bin / f"data_batch_{k}_first1017.bin", damaged / f"data_batch_{k}.bin")
    (damaged / "test_batch.bin").write_bytes((cifar_bin / "test_batch_first1017.bin").read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"test_batch.bin.*3125236 bytes"):
        cifar10.load_data(damaged)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No CIFAR-10 data found"):
        cifar10.load_data(tmp_path / "empty")


# ------------------------------------------------------------------------------------------------
# get_file and archives

def test_get_file_sha256_and_redownload_of_a_damaged_copy(tmp_path, server):
    blob = os.urandom(5000)
    server.files["/f.bin"] = blob
    sha = hashlib.sha256(blob).hexdigest()
    path = datasets.get_file("f.bin", server.url("/f.bin"), file_hash=sha, cache_dir=tmp_path)
    assert open(path, "rb").read() == blob and path == str(tmp_path / "datasets" / "f.bin")
    datasets.get_file("f.bin", server.url("/f.bin"), file_hash=sha, cache_dir=tmp_path)
    assert len(server.requests) == 1
    with open(path, "r+b") as f:  # damage the cached copy: it is downloaded again
        f.write(b"xx")
    datasets.get_file("f.bin", server.url("/f.bin"), file_hash=sha, cache_dir=tmp_path)
    assert len(server.requests) == 2 and open(path, "rb").read() == blob


def test_extract_archive_refuses_paths_outside_the_target(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(OSError, match="outside"):
        datasets.extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------
# FER-2013

def fer_expected(root):
    out = []
    for split in ("train", "test"):
        xs, ys, names = [], [], []
        for emotion in sorted(os.listdir(root / split)):
            for f in sorted(os.listdir(root / split / emotion)):
                xs.append(pil(root / split / emotion / f, "L"))
                ys.append(FER_IDS[emotion])
                names.append(f)
        out.append((np.stack(xs), np.array(ys, np.uint8), names))
    return out


def test_fer_folders_use_the_official_label_ids(fer_subset):
    (x, y), (xt, yt) = fer2013.load_data(fer_subset)
    (ex, ey, _), (ext, eyt, _) = fer_expected(fer_subset)
    assert x.shape == (84, 48, 48) and x.dtype == np.uint8 and xt.shape == (84, 48, 48)
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(xt, ext)
    np.testing.assert_array_equal(yt, eyt)
    assert [fer2013.CLASS_NAMES[i] for i in sorted(set(y.tolist()))] == list(fer2013.CLASS_NAMES)


def test_fer_csv_equals_the_folders(tmp_path, fer_subset):
    (ex, ey, _), (ext, eyt, names) = fer_expected(fer_subset)
    lines = ["emotion,pixels,Usage"]
    lines += [f"{v},{' '.join(map(str, img.ravel()))},Training" for img, v in zip(ex, ey)]
    lines += [f"{v},{' '.join(map(str, img.ravel()))},{n.split('_')[0]}" for img, v, n in zip(ext, eyt, names)]
    assert {n.split("_")[0] for n in names} == {"PublicTest", "PrivateTest"}
    (tmp_path / "fer2013.csv").write_text("\n".join(lines) + "\n")
    (x, y), (xt, yt) = fer2013.load_data(tmp_path)  # the folder holding fer2013.csv
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(xt, ext)
    np.testing.assert_array_equal(yt, eyt)
    (tmp_path / "bad.csv").write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(ValueError, match="line 2.*2304 pixel values.*3 values"):
        fer2013.load_data(tmp_path / "bad.csv")


def test_fer_not_found_says_where_to_get_it(isolated):
    with pytest.raises(FileNotFoundError, match="Kaggle"):
        fer2013.load_data()


# ------------------------------------------------------------------------------------------------
# Sign Language MNIST

def test_sign_mnist_folders_in_csv_row_order(sign_mnist_abY):
    folder = sign_mnist_abY / "sign_mnist_test"
    x, y = sign_mnist.load_split(folder)
    files = [(int(re.match(r"[A-Z]\((\d+)\)", f).group(1)), letter, f) for letter in "ABY"
             for f in os.listdir(folder / letter)]
    files.sort()
    assert x.shape == (len(files), 28, 28) and x.dtype == np.uint8
    assert y.tolist() == [ord(letter) - ord("A") for _, letter, _ in files]  # A=0, B=1, Y=24
    np.testing.assert_array_equal(x, np.stack([pil(folder / letter / f, "L") for _, letter, f in files]))
    _, yc = sign_mnist.load_split(folder, contiguous_labels=True)
    assert sorted(set(yc.tolist())) == [0, 1, 23]


def test_sign_mnist_csv_files(tmp_path, sign_mnist_abY):
    x, y = sign_mnist.load_split(sign_mnist_abY / "sign_mnist_test")
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    for split, sl in (("train", slice(0, 300)), ("test", slice(300, None))):
        rows = [header] + [f"{v}," + ",".join(map(str, img.ravel())) for img, v in zip(x[sl], y[sl])]
        (tmp_path / f"sign_mnist_{split}.csv").write_text("\n".join(rows) + "\n")
    (xa, ya), (xb, yb) = sign_mnist.load_data(tmp_path)
    np.testing.assert_array_equal(xa, x[:300])
    np.testing.assert_array_equal(ya, y[:300])
    np.testing.assert_array_equal(xb, x[300:])
    np.testing.assert_array_equal(yb, y[300:])


def test_sign_mnist_needs_both_splits(sign_mnist_abY):
    with pytest.raises(FileNotFoundError, match="load_split"):
        sign_mnist.load_data(sign_mnist_abY)


# ------------------------------------------------------------------------------------------------
# Any image folder (CK+48)

def test_image_folder_ckplus(ckplus):
    x, y, names = datasets.load_image_folder(ckplus, color_mode="grayscale")
    assert names == sorted(os.listdir(ckplus)) and len(names) == 7
    assert x.shape == (981, 48, 48, 1) and x.dtype == np.uint8 and y.dtype == np.int32
    assert np.bincount(y).tolist() == [len(os.listdir(ckplus / n)) for n in names]
    files = [ckplus / n / f for n in names for f in sorted(os.listdir(ckplus / n))]
    np.testing.assert_array_equal(x[..., 0], np.stack([pil(f, "L") for f in files]))
    rgb, _, _ = datasets.load_image_folder(ckplus, color_mode="rgb", class_names=["fear"])
    assert rgb.shape == (75, 48, 48, 3) and (rgb == rgb[..., :1]).all()


def test_image_folder_resize_is_pillows(ckplus):
    x, y, names = datasets.load_image_folder(ckplus, image_size=(20, 30), color_mode="grayscale",
                                             class_names=["contempt"])
    files = sorted(os.listdir(ckplus / "contempt"))
    expected = np.stack([np.asarray(Image.open(ckplus / "contempt" / f).convert("L").resize((30, 20), Image.BILINEAR))
                         for f in files])
    assert x.shape == (54, 20, 30, 1)
    assert np.abs(x[..., 0].astype(int) - expected).max() <= 1


def test_image_folder_shuffle_keeps_pairs(ckplus):
    x, y, _ = datasets.load_image_folder(ckplus, color_mode="grayscale")
    xs, ys, _ = datasets.load_image_folder(ckplus, color_mode="grayscale", shuffle=True, seed=4)
    order = np.random.default_rng(4).permutation(len(y))
    np.testing.assert_array_equal(xs, x[order])
    np.testing.assert_array_equal(ys, y[order])


def test_image_folder_errors(tmp_path, ckplus):
    with pytest.raises(ValueError, match=r"class_names \['joy'\]"):
        datasets.load_image_folder(ckplus, class_names=["joy"])
    mixed = tmp_path / "mixed" / "a"
    mixed.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(mixed / "1.png")
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(mixed / "2.png")
    with pytest.raises(ValueError, match=r"1.png' is 8x8 but .*2.png' is 9x8"):
        datasets.load_image_folder(tmp_path / "mixed")
    x, _, _ = datasets.load_image_folder(tmp_path / "mixed", image_size=(4, 4))
    assert x.shape == (2, 4, 4, 3)
    (mixed / "3.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match="3.png"):
        datasets.load_image_folder(tmp_path / "mixed", image_size=(4, 4))
    with pytest.raises(FileNotFoundError):
        datasets.load_image_folder(tmp_path / "absent")
