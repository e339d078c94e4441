"""The training core, framework-free: rows and their seeded order, the loop with its checkpoints,
evaluation, early stopping and stops, and the Session protocol a backend implements."""

from localft.train.attempt import train

__all__ = ["train"]
