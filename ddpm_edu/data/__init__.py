"""The data layer: data sets, the training stream, and images and files at the library's boundary.

Modules (each may import the derivation, never training or the book's side):

* :mod:`~ddpm_edu.data.cifar10` -- CIFAR-10 through torchvision, its download and its on-disk format
* :mod:`~ddpm_edu.data.standin` -- stand-in images in CIFAR-10's format for machines without it
* :mod:`~ddpm_edu.data.digits` -- scikit-learn's 8x8 digits (offline)
* :mod:`~ddpm_edu.data.folder` -- a folder of your own images, decoded once into a uint8 cache
* :mod:`~ddpm_edu.data.photo` -- the photograph that chapters 2-5 noise
* :mod:`~ddpm_edu.data.toy` -- 2-D toy data sets and the Gaussian mixture of chapter 6
* :mod:`~ddpm_edu.data.stream` -- :class:`~ddpm_edu.data.stream.BatchIterator`, the resumable batch stream
* :mod:`~ddpm_edu.data.images` -- uint8 conversion, image grids, PNG and GIF files
* :mod:`~ddpm_edu.data.files` -- atomic writes and the cache folder
* :mod:`~ddpm_edu.data.download` -- downloads with a bounded wait

Images live in [-1, 1] inside the library; conversion to uint8 happens only in :mod:`~ddpm_edu.data.images`.
"""

__all__ = ["DataError", "SHAPES", "CLASSES", "DEFAULT_ROOT", "FOLDER_SIZE", "FOLDER_CHANNELS", "example_shape"]

# The shape of one example of each data set of a fixed size that a config can name.
SHAPES: dict[str, tuple[int, ...]] = {"cifar10": (3, 32, 32), "digits": (1, 8, 8), "toy2d": (2,)}

# The number of classes of each data set that has labels (``data.labels``, chapter 10).
CLASSES: dict[str, int] = {"cifar10": 10, "digits": 10}

DEFAULT_ROOT = "~/.cache/ddpm_edu/data"  # data.root's default: where CIFAR-10 is downloaded to

FOLDER_SIZE, FOLDER_CHANNELS = 32, 3  # a folder of images: 32x32 RGB unless data.image_size, data.channels say otherwise


def example_shape(dataset: str, image_size: int | None = None, channels: int | None = None) -> tuple[int, ...]:
    """The shape of one example: :data:`SHAPES` for a fixed data set, (channels, image_size, image_size) for a folder."""
    if dataset == "folder":
        size = image_size or FOLDER_SIZE
        return (channels or FOLDER_CHANNELS, size, size)
    return SHAPES[dataset]


class DataError(RuntimeError):
    """A data set that cannot be loaded; the message says what to do."""
