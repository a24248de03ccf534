"""Measuring interpolation as the paper does: the parameter grid and its intervals, the measures, the pixel
dissolve reference, the paper-style plots, strips, grids and GIFs, and the comparison of several runs."""
