"""Networks, losses, methods (AEAI and baselines), the trainer, and loading trained runs."""
