"""MLX training backend (Apple silicon, or mlx[cpu] on Linux). Importing this does not load mlx."""

from localft.backends.mlx.backend import MlxBackend

__all__ = ["MlxBackend"]
