"""Drivers of many runs: the paper comparison (`reproduce`) and its results page, the downstream benchmark,
the speed bench, and the shared "train, skip or resume this run" helper."""
