"""AEAI toolkit: render, train, evaluate and augment with faithful latent interpolation.

The sub-packages live in sibling folders of the repository and install under this namespace:
`toolkit.datasets`, `toolkit.render`, `toolkit.aeai`, `toolkit.augment`.
"""

__version__ = "0.1.0"
