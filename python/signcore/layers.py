"""Keras layers, computed in C++.

The classes take Keras's constructor arguments and defaults (``Dense(units, activation=None,
use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros")`` and so on), plus
the keywords every Keras layer takes: ``name``, ``trainable``, ``input_shape`` (or ``input_dim``)
and ``dtype`` (``"float32"`` only). Unknown keywords raise an error naming them.

Example:
    >>> from signcore import layers
    >>> model = signcore.Sequential([
    ...     layers.Flatten(input_shape=(28, 28, 1)),
    ...     layers.Dense(128, activation="relu"),
    ...     layers.Dropout(0.2),
    ...     layers.Dense(10, activation="softmax"),
    ... ])
"""
from . import _core

Layer = _core.Layer
Dense = _core.Dense
Activation = _core.Activation
Dropout = _core.Dropout
Flatten = _core.Flatten
Reshape = _core.Reshape

# Input (functional API) is added here by signcore/__init__.py, once functional.py is loaded.


def deserialize(config):
    """Rebuild a layer from ``{"class_name": ..., "config": ...}`` as Keras's layers.deserialize."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Expected a dict with 'class_name' and 'config'. Received: config={config!r}")
    return _core.layer_from_config(config["class_name"], dict(config.get("config", {})))


def serialize(layer):
    """``{"class_name": ..., "config": layer.get_config()}`` as Keras's layers.serialize."""
    return {"class_name": layer.class_name, "config": layer.get_config()}


__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Layer", "Reshape", "deserialize", "serialize"]

# Pooling, BatchNormalization and SpatialDropout2D (cpp/bindings/layers_pooling.cpp).
MaxPooling2D = _core.MaxPooling2D
AveragePooling2D = _core.AveragePooling2D
GlobalAveragePooling2D = _core.GlobalAveragePooling2D
GlobalMaxPooling2D = _core.GlobalMaxPooling2D
BatchNormalization = _core.BatchNormalization
SpatialDropout2D = _core.SpatialDropout2D
MaxPooling3D = _core.MaxPooling3D
AveragePooling3D = _core.AveragePooling3D
GlobalAveragePooling3D = _core.GlobalAveragePooling3D
GlobalMaxPooling3D = _core.GlobalMaxPooling3D
MaxPool2D = MaxPooling2D  # Keras's aliases
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
__all__ += ["AvgPool2D", "AveragePooling2D", "BatchNormalization", "GlobalAvgPool2D",
            "GlobalAveragePooling2D", "GlobalMaxPool2D", "GlobalMaxPooling2D", "MaxPool2D",
            "MaxPooling2D", "SpatialDropout2D"]
MaxPool3D = MaxPooling3D
AvgPool3D = AveragePooling3D
GlobalAvgPool3D = GlobalAveragePooling3D
GlobalMaxPool3D = GlobalMaxPooling3D
__all__ += ["AvgPool3D", "AveragePooling3D", "GlobalAvgPool3D", "GlobalAveragePooling3D",
            "GlobalMaxPool3D", "GlobalMaxPooling3D", "MaxPool3D", "MaxPooling3D"]

# Convolutions (cpp/bindings/layers_conv.cpp).
Conv2D = _core.Conv2D
ZeroPadding2D = _core.ZeroPadding2D
Convolution2D = Conv2D
Conv3D = _core.Conv3D
Convolution3D = Conv3D
__all__ += ["Conv2D", "Conv3D", "Convolution2D", "Convolution3D", "ZeroPadding2D"]

# Recurrent layers and masking (cpp/bindings/layers_recurrent.cpp).
SimpleRNN = _core.SimpleRNN
LSTM = _core.LSTM
GRU = _core.GRU
Masking = _core.Masking
Bidirectional = _core.Bidirectional
__all__ += ["Bidirectional", "GRU", "LSTM", "Masking", "SimpleRNN"]

# Convolutional recurrent layers (cpp/bindings/layers_conv_lstm.cpp).
ConvLSTM2D = _core.ConvLSTM2D
__all__ += ["ConvLSTM2D"]
# Video and volumes.
TimeDistributed = _core.TimeDistributed
__all__ += ["TimeDistributed"]
