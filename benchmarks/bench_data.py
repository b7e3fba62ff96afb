"""Image pipeline: images per second through flow_from_directory with the seed 002 augmentation
(rescale 1/255, rotation 15, width/height shift 0.1, zoom 0.1) at 128x128 on the real Massey ASL
JPEGs (400x400), against the same steps done the way Keras does them (Pillow to load and resize,
NumPy for the parameters, scipy.ndimage.affine_transform per channel), and whether the pipeline
keeps a training step of the seed 002 ASL CNN fed.

    python benchmarks/bench_data.py                  # all cores
    python benchmarks/bench_data.py --threads 1 --quick

The data is unpacked once from ../shared/datasets/massey_asl.tar.gz into a cache folder
(~/.cache/signcore/bench by default, --cache), never into the repository.
"""
import argparse
import os
import sys
import tarfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import add_common_args, default_threads, measure, print_table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_002 = dict(rescale=1.0 / 255, rotation_range=15, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1)


def unpack(archive, cache, per_class):
    """The first `per_class` images of every class, unpacked once into `cache`."""
    root = os.path.join(cache, f"massey_asl_{per_class}")
    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return root
    counts = {}
    with tarfile.open(archive) as tar:
        for m in tar:
            parts = m.name.split("/")
            if not (m.isfile() and len(parts) >= 2 and parts[-1].lower().endswith(".jpeg")):
                continue
            cls = parts[-2]
            if counts.get(cls, 0) >= per_class:
                continue
            counts[cls] = counts.get(cls, 0) + 1
            os.makedirs(os.path.join(root, cls), exist_ok=True)
            with open(os.path.join(root, cls, parts[-1]), "wb") as f:
                f.write(tar.extractfile(m).read())
    open(done, "w").close()
    return root


# ---------------------------------------------------------------------------------------------
# The Keras way: Pillow + NumPy + SciPy, one image after the other (Keras's default, workers=1)


def keras_style_batches(paths, target, batch_size, batches, rng_seed):
    from PIL import Image
    from scipy import ndimage

    rs = np.random.RandomState(rng_seed)
    h, w = target
    order = rs.permutation(len(paths))
    out = None
    for b in range(batches):
        rs.seed(rng_seed + b)
        idx = order[(b * batch_size) % len(paths):][:batch_size]
        out = np.zeros((len(idx), h, w, 3), np.float32)
        for i, j in enumerate(idx):
            img = Image.open(paths[j])
            if img.mode != "RGB":
                img = img.convert("RGB")
            if img.size != (w, h):
                img = img.resize((w, h), Image.NEAREST)
            x = np.asarray(img, dtype=np.float32)
            theta = np.deg2rad(rs.uniform(-15, 15))
            tx, ty = rs.uniform(-0.1, 0.1) * h, rs.uniform(-0.1, 0.1) * w
            zx, zy = rs.uniform(0.9, 1.1, 2)
            rs.random(), rs.random()  # the flip coins Keras always draws
            m = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
            m = m @ np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]) @ np.diag([zx, zy, 1.0])
            o = np.array([[1, 0, h / 2 - 0.5], [0, 1, w / 2 - 0.5], [0, 0, 1]])
            m = o @ m @ np.linalg.inv(o)
            m[:, [0, 1]] = m[:, [1, 0]]
            m[[0, 1]] = m[[1, 0]]
            x = np.stack([ndimage.affine_transform(x[..., c], m[:2, :2], m[:2, 2], order=1, mode="nearest")
                          for c in range(3)], axis=-1)
            out[i] = x * np.float32(1 / 255)
    return out


def asl_model(num_classes, size):
    import signcore
    from signcore import layers

    model = signcore.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(size, size, 3)),
        layers.BatchNormalization(), layers.MaxPooling2D(2, 2),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.BatchNormalization(), layers.MaxPooling2D(2, 2),
        layers.Conv2D(128, (3, 3), activation="relu"), layers.BatchNormalization(), layers.MaxPooling2D(2, 2),
        layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(optimizer=signcore.optimizers.Adam(learning_rate=1e-4), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--per-class", type=int, default=24, help="images per class to use (default 24)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=12, help="batches per timed round (default 12)")
    parser.add_argument("--size", type=int, default=128, help="target size (default 128)")
    parser.add_argument("--train-steps", type=int, default=6, help="fit steps timed for the model check")
    parser.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "signcore", "bench"))
    parser.add_argument("--no-model", action="store_true", help="skip the ASL model check")
    args = parser.parse_args()
    if args.quick:
        args.per_class, args.batches, args.repeat, args.warmup, args.train_steps = 2, 2, 2, 1, 2
        args.size = 64

    import signcore
    from signcore.preprocessing.image import ImageDataGenerator

    signcore.set_num_threads(args.threads)
    archive = os.path.join(REPO, "..", "shared", "datasets", "massey_asl.tar.gz")
    root = unpack(archive, args.cache, args.per_class)
    size, bs = (args.size, args.size), args.batch_size
    gen = ImageDataGenerator(**SEED_002)
    print(f"{default_threads()} cores available, {args.threads} thread(s); signcore {signcore.__version__}; "
          f"data: {root}")

    rows = []
    worker_counts = sorted({0, 1, args.threads})
    rates = {}
    for workers in worker_counts:
        it = gen.flow_from_directory(root, target_size=size, batch_size=bs, seed=42, workers=workers)
        n = min(args.batches, len(it))

        def run(it=it, n=n):
            for i in range(n):
                it[i]
            it.on_epoch_end()

        t = measure(run, warmup=args.warmup, repeat=args.repeat, min_time=args.min_time)
        rate = n * bs / t.median
        rates[workers] = rate
        label = "calling thread only" if workers == 0 else f"{workers} worker thread(s)"
        rows.append([f"signcore flow_from_directory, {label}", f"{rate:,.0f}", f"{t.spread:.0%}"])
        it.close()

    paths = [os.path.join(dp, f) for dp, _, fs in sorted(os.walk(root)) for f in sorted(fs) if f.endswith(".jpeg")]
    n = args.batches
    t = measure(lambda: keras_style_batches(paths, size, bs, n, 42), warmup=1, repeat=max(1, args.repeat // 2),
                min_time=args.min_time)
    keras_rate = n * bs / t.median
    rows.append(["Pillow + NumPy + SciPy (Keras's steps), 1 thread", f"{keras_rate:,.0f}", f"{t.spread:.0%}"])
    print(f"\nImages per second, {size[0]}x{size[1]}, batch {bs}, seed 002 augmentation, 400x400 JPEG input")
    print_table(rows, ["pipeline", "images/s", "noise"])
    best = max(rates.values())
    print(f"signcore (best) / Keras-style: {best / keras_rate:.1f}x; single-thread signcore / Keras-style: "
          f"{rates[0] / keras_rate:.1f}x")

    if args.no_model:
        return
    classes = len([d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))])
    model = asl_model(classes, size[0])
    it = gen.flow_from_directory(root, target_size=size, batch_size=bs, seed=42, workers=args.threads)
    xb, yb = it[0]
    model.train_on_batch(xb, yb)  # build + warm up
    steps = max(2, args.train_steps)
    step = measure(lambda: model.train_on_batch(xb, yb), warmup=1, repeat=max(2, args.repeat // 2), min_time=0)

    class WaitProbe(signcore.callbacks.Callback):
        """Reads the iterator's wait counter when step 1 begins (after the first batch was served)."""
        first = None

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:
                WaitProbe.first = it._wait_seconds

    waited = it._wait_seconds
    start = time.perf_counter()
    model.fit(it, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[WaitProbe()])
    fit_step = (time.perf_counter() - start) / steps
    first_wait = WaitProbe.first - waited  # the first batch is prepared on demand
    wait = (it._wait_seconds - WaitProbe.first) / (steps - 1)  # then: time spent getting each batch
    model_rate = bs / step.median
    print(f"\nSeed 002 ASL CNN ({classes} classes, {size[0]}x{size[1]}), batch {bs}, {args.threads} thread(s)")
    print_table([
        ["train step on a ready batch (train_on_batch)", f"{step.median * 1000:,.0f} ms", f"{model_rate:,.0f}"],
        ["fit(iterator) step, pipeline running alongside", f"{fit_step * 1000:,.0f} ms", f"{bs / fit_step:,.0f}"],
        ["  waiting for the first batch (once)", f"{first_wait * 1000:,.1f} ms", ""],
        ["  waiting for each later batch", f"{wait * 1000:,.2f} ms", ""],
    ], ["", "time per step", "images/s"])
    fed = wait < 0.01 * fit_step
    print(f"pipeline alone: {rates[args.threads]:,.0f} images/s = {rates[args.threads] / model_rate:.0f}x what the "
          f"model consumes; after the first batch the training thread waits {wait / fit_step:.2%} of each step -> "
          f"{'the model never waits for data' if fed else 'the model waits for data'}")


if __name__ == "__main__":
    main()
