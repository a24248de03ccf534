"""Augmentation: pair and alpha sampling, label interpolation, generation into HDF5, the downstream benchmark."""
