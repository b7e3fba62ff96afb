"""Progress output: Keras 2's text layout for verbose=1 (a bar rewritten in place) and verbose=2
(one line per epoch), "auto", evaluate and predict bars, throttled updates (no flooding of a
notebook), and callback messages placed as Keras places them."""
import contextlib
import io
import re
import time

import numpy as np
import pytest

import signcore
from signcore import callbacks, layers
from signcore.callbacks import Callback


def data(n=64, f=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(f, classes)), axis=1)
    return x, y


def make_model():
    signcore.utils.set_random_seed(0)
    m = signcore.Sequential([layers.Dense(5, activation="tanh", input_shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def render(text):
    """What a terminal (or Jupyter's output area) shows: "\\r" returns to the start of the line and
    later characters overwrite earlier ones."""
    lines, cur, col = [], [], 0
    for ch in text:
        if ch == "\n":
            lines.append("".join(cur))
            cur, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            if col < len(cur):
                cur[col] = ch
            else:
                cur.append(ch)
            col += 1
    if cur:
        lines.append("".join(cur))
    return [l.rstrip() for l in lines]


NUM = r"\d+\.\d{4}(e[+-]\d\d)?"
FINAL = (r"4/4 \[==============================\] - \d+s \d+(us|ms|s)/step - loss: {n} - accuracy: {n}"
         .format(n=NUM))


def test_verbose_1_bar_updates_in_place(capsys):
    x, y = data()
    make_model().fit(x, y, batch_size=16, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/2\n")
    shown = render(out)
    # One line per epoch header and one finished bar per epoch: the updates overwrote each other.
    assert len(shown) == 4 and shown[0] == "Epoch 1/2" and shown[2] == "Epoch 2/2"
    assert re.fullmatch(FINAL, shown[1]) and re.fullmatch(FINAL, shown[3])
    # Every update starts with "\r" and is padded over the previous one; the first shows an ETA.
    epoch1 = out.split("Epoch 2/2\n")[0][len("Epoch 1/2\n"):]
    updates = epoch1.split("\r")[1:]
    assert all(len(u.rstrip("\n")) >= len(updates[0]) for u in updates[1:])
    assert re.fullmatch(r"1/4 \[={6}>\.{23}\] - ETA: \d+s - loss: " + NUM + " - accuracy: " + NUM, updates[0])


def test_verbose_auto_is_1_and_0_is_silent(capsys):
    x, y = data()
    m = make_model()
    m.fit(x, y, batch_size=16, epochs=1, verbose="auto")
    assert re.fullmatch(FINAL, render(capsys.readouterr().out)[1])
    m.fit(x, y, batch_size=16, epochs=1, verbose=0)
    m.evaluate(x, y, verbose=0)
    m.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_verbose_2_one_line_per_epoch(capsys):
    x, y = data()
    make_model().fit(x, y, batch_size=16, epochs=3, verbose=2, validation_data=(x, y))
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert lines[0::2] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    for line in lines[1::2]:
        assert re.fullmatch(r"4/4 - \d+s - loss: {n} - accuracy: {n} - val_loss: {n} - val_accuracy: {n} - "
                            r"\d+(us|ms|s)/epoch - \d+(us|ms|s)/step".format(n=NUM), line), line


def test_evaluate_and_predict_show_a_bar(capsys):
    x, y = data()
    m = make_model()
    m.evaluate(x, y, batch_size=16, verbose=1)
    shown = render(capsys.readouterr().out)
    assert len(shown) == 1 and re.fullmatch(FINAL, shown[0])
    m.predict(x, batch_size=16, verbose=1)
    out = capsys.readouterr().out
    assert re.fullmatch(r"4/4 \[==============================\] - \d+s \d+(us|ms|s)/step", render(out)[0])
    assert out.endswith("\n")


def test_updates_are_throttled(capsys):
    # 1000 quick batches: the bar is redrawn at most every 0.05 s (plus the first and last update),
    # so a notebook receives a handful of messages, not one per batch.
    x, y = data(n=1000)
    start = time.perf_counter()
    make_model().fit(x, y, batch_size=1, epochs=1, verbose=1)
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    redraws = out.count("\r")
    assert redraws <= 3 + elapsed / 0.05, (redraws, elapsed)
    assert redraws < 1000
    assert re.fullmatch(r"1000/1000 \[=+\] - .*", render(out)[1])


def test_value_formats_follow_keras():
    class Odd(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["tiny"] = 1.5e-5
            logs["zero"] = 0.0
            logs["big"] = 1234.56789

    x, y = data()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        make_model().fit(x, y, batch_size=16, epochs=1, verbose=2, callbacks=[Odd()])
    line = buf.getvalue().splitlines()[1]
    assert " - tiny: 1.5000e-05 - zero: 0.0000e+00 - big: 1234.5679 - " in line


def test_callback_messages_appear_as_in_keras(capsys):
    class Plateau(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = 1.0

    x, y = data()
    m = make_model()
    m.optimizer.learning_rate = 0.001
    m.fit(x, y, batch_size=16, epochs=3, verbose=1,
          callbacks=[Plateau(), callbacks.ReduceLROnPlateau(patience=1, factor=0.5, verbose=1),
                     callbacks.EarlyStopping(patience=2, verbose=1)])
    shown = render(capsys.readouterr().out)
    lr = repr(float(np.float32(0.001) * 0.5))
    assert lr == "0.0005000000237487257"
    # The message ends the in-place bar line and the finished bar follows it.
    i = shown.index(f"Epoch 2: ReduceLROnPlateau reducing learning rate to {lr}.")
    assert re.match(r"4/4 \[=+\] - ETA: ", shown[i - 1]) and shown[i - 2] == "Epoch 2/3"
    # learning_rate is the rate used in the epoch; float32(0.001) > 1e-3 prints as 0.0010.
    assert re.fullmatch(FINAL + r" - val_loss: 1\.0000 - learning_rate: 0\.0010", shown[i + 1])
    assert shown[-1] == "Epoch 3: early stopping"
    # ... and nothing is printed by the callbacks with verbose=0 (the default).
    m.fit(x, y, batch_size=16, epochs=3, verbose=0,
          callbacks=[Plateau(), callbacks.ReduceLROnPlateau(patience=0), callbacks.EarlyStopping(patience=0)])
    assert capsys.readouterr().out == ""


def test_progress_goes_through_sys_stdout():
    # The bar is written with sys.stdout.write (what Jupyter's kernel captures), not to fd 1.
    x, y = data()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        make_model().fit(x, y, batch_size=16, epochs=1, verbose=1)
    assert re.fullmatch(FINAL, render(buf.getvalue())[1])


def test_jupyter_kernel_receives_a_few_in_place_updates():
    # A real ipykernel: fit with 2000 quick batches sends a handful of stream messages (not one per
    # batch), and the text, with "\r" applied as Jupyter's output area does, is one bar per epoch.
    from jupyter_client.manager import start_new_kernel

    code = (
        "import numpy as np, signcore\n"
        "from signcore import layers\n"
        "x = np.random.default_rng(0).normal(size=(2000, 4)).astype('float32')\n"
        "y = (x[:, 0] > 0).astype('int64')\n"
        "m = signcore.Sequential([layers.Dense(2, activation='softmax', input_shape=(4,))])\n"
        "m.compile(optimizer='sgd', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        "import time; t0 = time.perf_counter()\n"
        "m.fit(x, y, batch_size=1, epochs=2, verbose=1)\n"
        "m.evaluate(x, y, batch_size=1, verbose=1)\n"
        "print('ELAPSED', time.perf_counter() - t0)\n"
    )
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        msg_id = kc.execute(code)
        streams = []
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                streams.append(msg["content"])
            elif msg["msg_type"] == "error":
                pytest.fail("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(s["text"] for s in streams if s["name"] == "stdout")
    shown = render(text)
    elapsed = float(shown[-1].split()[1])
    # Per bar: the first update, the last batch, the finished line, plus one per 0.05 s.
    assert text.count("\r") <= 3 * 3 + elapsed / 0.05, (text.count("\r"), elapsed)
    assert len(streams) < 100
    assert shown[0] == "Epoch 1/2" and shown[2] == "Epoch 2/2"
    for line in (shown[1], shown[3]):
        assert re.fullmatch(r"2000/2000 \[=+\] - \d+s \d+(us|ms|s)/step - loss: {n} - accuracy: {n}".format(n=NUM), line)
    assert re.fullmatch(r"2000/2000 \[=+\] - \d+s \d+(us|ms|s)/step - loss: {n} - accuracy: {n}".format(n=NUM), shown[4])
    assert len(shown) == 6
