"""AEAI toolkit: render, train, evaluate and augment with faithful latent interpolation.

The sub-packages live in sibling folders of the repository and install under this namespace, one folder a
stage: `toolkit.datasets`, `toolkit.render`, `toolkit.aeai`, `toolkit.evaluate`, `toolkit.augment`,
`toolkit.experiments`; this folder holds the ground they share (errors, files, devices, progress callbacks)
and `toolkit.cli`, the command line on top.
"""

__version__ = "0.1.0"
