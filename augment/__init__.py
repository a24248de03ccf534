"""Augmentation: pair and alpha sampling, generation of labelled interpolations into HDF5, real + augmented data."""
