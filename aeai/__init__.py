"""The method and its training: networks and their tangent, losses, methods (AEAI and the baselines), the trainer,
DDP, run directories and checkpoints."""
