"""The HDF5 dataset format (write, read, validate), importers, splits and the torch Dataset."""

from toolkit.datasets.h5 import DatasetInfo, DatasetSpec, H5Writer, open_dataset, partial_path
from toolkit.datasets.split import Split, make_arc_split, make_split, split_rows

__all__ = [
    "DatasetInfo",
    "DatasetSpec",
    "H5ImageDataset",
    "H5Writer",
    "Split",
    "make_arc_split",
    "make_split",
    "open_dataset",
    "partial_path",
    "split_rows",
]


def __getattr__(name: str):
    # torch takes a second to import; commands that only read files (`toolkit info`) should not pay it.
    if name == "H5ImageDataset":
        from toolkit.datasets.torch_dataset import H5ImageDataset

        return H5ImageDataset
    raise AttributeError(name)
