"""localft: fine-tune a small language model on your own posts, locally.

Importing this package stays light: torch, mlx, transformers and textual load where they are used.
"""

__version__ = "0.1.0"
