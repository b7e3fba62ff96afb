"""Datasets as NumPy arrays, as ``keras.datasets``, plus the per-frame feature pickle.

    from signcore.datasets import cifar10
    (x_train, y_train), (x_test, y_test) = cifar10.load_data()

Modules:
    cifar10: CIFAR-10 (official Python or binary batches, image folders, or download).
    fer2013: FER-2013 facial expressions (Kaggle CSV or image folders).
    sign_mnist: Sign Language MNIST (Kaggle CSVs or letter folders).
    folders: any ``<class>/<images>`` folder (load_image_folder).
    features: the (features, masks) 7-tuple pickle of video-classification experiments.
    cache: where data is searched, downloaded (atomically, checksum-verified) and unpacked.

Where data is looked for: the ``path`` argument, then ``$SIGNCORE_DATA``, then the cache
(``$SIGNCORE_CACHE`` or ``~/.cache/signcore``). Only CIFAR-10 is downloaded (when nothing local is
found and the machine is online).
"""
from . import cache, cifar10, features, fer2013, folders, sign_mnist
from .cache import extract_archive, get_file
from .features import (FeatureSplits, load_feature_pickle, make_feature_splits, pad_sequences_with_masks,
                       save_feature_pickle, stratified_split, wlasl_landmarks_to_pickle)
from .folders import list_image_files, load_image_folder, read_images

__all__ = [
    "FeatureSplits", "cache", "cifar10", "extract_archive", "features", "fer2013", "folders", "get_file",
    "list_image_files", "load_feature_pickle", "load_image_folder", "make_feature_splits",
    "pad_sequences_with_masks", "read_images", "save_feature_pickle", "sign_mnist", "stratified_split",
    "wlasl_landmarks_to_pickle",
]
