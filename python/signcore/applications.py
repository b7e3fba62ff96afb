"""The reference experiments' models, written with signcore's layers exactly as the seeds define
them (layer names included where the seed names them), for notebooks, tests and benchmarks.

Each builder returns an uncompiled model; compile it as the experiment does (see each docstring).
"""
from __future__ import annotations

from .functional import Input
from .layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D)
from .models import Model, Sequential

__all__ = ["cifar10_cnn", "asl_cnn", "emotion_cnn", "sign_rnn", "video_convlstm"]


def cifar10_cnn(input_shape=(32, 32, 3), num_classes=10, dropout=0.25):
    """Seed 001's CIFAR-10 CNN: 2,168,362 parameters for 32x32x3 inputs and 10 classes.

    The seed compiles it with SGD and categorical cross-entropy on one-hot labels.
    """
    k, f1, f2, p = 3, 32, 64, dropout
    return Sequential([
        Conv2D(f1, (k, k), padding="same", name="First-Convolution", input_shape=input_shape),
        Activation("relu", name="First-Relu"),
        Conv2D(f1, (k, k), padding="same", name="Second-Convolution"),
        Activation("relu", name="Second-Relu"),
        MaxPooling2D((2, 2), name="First-Max-Pool"),
        Dropout(p, name="First-Dropout"),
        Conv2D(f2, (k, k), padding="same", name="Third-Convolution"),
        Activation("relu", name="Third-Relu"),
        Conv2D(f2, (k, k), padding="same", name="Fourth-Convolution"),
        Activation("relu", name="Fourth-Relu"),
        MaxPooling2D((2, 2), name="Second-Max-Pool"),
        Dropout(p, name="Second-Dropout"),
        Flatten(name="Flatten"),
        Dense(512, name="First-Affine"),
        Activation("relu", name="Fifth-Relu"),
        Dropout(2 * p, name="Third-Dropout"),
        Dense(num_classes, name="Final-Connected-Layer"),
        Activation("softmax", name="Softmax"),
    ])


def asl_cnn(input_shape=(128, 128, 3), num_classes=24):
    """Seed 002's ASL-alphabet CNN: 6,523,096 parameters (448 non-trainable) at 128x128x3, 24 letters.

    The seed compiles it with Adam(1e-4) and categorical cross-entropy (flow_from_directory's
    one-hot labels).
    """
    return Sequential([
        Input(shape=input_shape),
        Conv2D(32, (3, 3), activation="relu"),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Conv2D(64, (3, 3), activation="relu"),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Conv2D(128, (3, 3), activation="relu"),
        BatchNormalization(),
        MaxPooling2D(2, 2),
        Flatten(),
        Dense(256, activation="relu"),
        Dropout(0.5),
        Dense(num_classes, activation="softmax"),
    ])


def emotion_cnn(input_shape=(48, 48, 1), num_classes=7):
    """A facial-emotion CNN following the emotion seed's description: blocks of Conv2D,
    BatchNormalization, MaxPooling and Dropout, then Flatten and a softmax Dense layer. The seed
    trains it with Adam(1e-4) and sparse categorical cross-entropy for 25 epochs (patience 10).
    """
    return Sequential([
        Input(shape=input_shape),
        Conv2D(32, (3, 3), padding="same", activation="relu"),
        BatchNormalization(),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Conv2D(64, (3, 3), padding="same", activation="relu"),
        BatchNormalization(),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Conv2D(128, (3, 3), padding="same", activation="relu"),
        BatchNormalization(),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Flatten(),
        Dense(num_classes, activation="softmax"),
    ])


def sign_rnn(num_classes=15, max_seq_length=50, num_features=1280):
    """Seed 000's two-input masked SimpleRNN (frame features + boolean mask). The seed compiles it
    with Adam(5e-4), sparse categorical cross-entropy and accuracy."""
    from .layers import SimpleRNN

    frame_features_input = Input((max_seq_length, num_features))
    mask_input = Input((max_seq_length,), dtype="bool")
    x = SimpleRNN(256, return_sequences=True)(frame_features_input, mask=mask_input)
    x = SimpleRNN(128)(x)
    for units in (256, 128, 256, 128):
        x = Dropout(0.3)(x)
        x = Dense(units, activation="relu")(x)
    x = Dropout(0.3)(x)
    x = Dense(64, activation="relu")(x)
    output = Dense(num_classes, activation="softmax")(x)
    return Model([frame_features_input, mask_input], output)


def video_convlstm(input_shape=(20, 150, 150, 3), num_classes=2000):
    """Seed 004's ConvLSTM2D video-to-gloss model: ConvLSTM2D(4/8/14/16, 3x3, recurrent_dropout=0.2,
    return_sequences) + MaxPooling3D((1, 2, 2)) + TimeDistributed(Dropout(0.2)), Flatten, Dense
    softmax. Per-layer parameters 1,024 / 3,488 / 11,144 / 17,344 / 31,362,000 at the seed's shapes.
    The seed compiles it with Adam(1e-3) and sparse categorical cross-entropy, batch 2."""
    from .layers import ConvLSTM2D, MaxPooling3D, TimeDistributed

    inp = Input(input_shape, name="batch_vid")
    x = inp
    for i, filters in enumerate((4, 8, 14, 16)):
        x = ConvLSTM2D(filters, (3, 3), activation="tanh", recurrent_dropout=0.2, return_sequences=True)(x)
        x = MaxPooling3D(pool_size=(1, 2, 2))(x)
        if i < 3:
            x = TimeDistributed(Dropout(0.2))(x)
    x = Flatten(name="flat_1")(x)
    out = Dense(num_classes, activation="softmax", name="batch_class")(x)
    return Model(inp, out)
