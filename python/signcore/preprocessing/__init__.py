"""Keras's preprocessing utilities (``keras.preprocessing``): image augmentation and image folders.

    from signcore.preprocessing.image import ImageDataGenerator

    train_gen = ImageDataGenerator(rescale=1 / 255, rotation_range=15, zoom_range=0.1)
    train = train_gen.flow_from_directory("data/train", target_size=(128, 128), batch_size=16)
    model.fit(train, epochs=10)
"""
from . import image
from .image import image_dataset_from_directory

__all__ = ["image", "image_dataset_from_directory"]
