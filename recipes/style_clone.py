"""style-clone: your exported posts → a model that writes like you, as a chat-ready GGUF."""

from __future__ import annotations

from localft.recipes.base import Recipe, RecipeInput

RECIPE = Recipe(
    name="style-clone",
    summary="Teach a model to write like you from your exports (LinkedIn, X, Threads, Facebook, Bluesky, Mastodon, Reddit, Substack, text).",
    inputs=(
        RecipeInput("--from", "Export archive or folder (LinkedIn, X, Mastodon, Substack) or a posts file."),
        RecipeInput("--model", "Base model; default: the largest catalog model that fits.", required=False),
    ),
    task="style",
    # Two passes over the posts: on a 27-post X export validation loss rose from 2 to 4 epochs, on
    # the 150-post sample it still falls at 2; early stopping (validation twice an epoch) ends a
    # run that overfits sooner.
    train_defaults={
        "max_seq_len": 1024, "batch_size": 4, "grad_accum": 2, "learning_rate": 2e-4, "epochs": 2,
        "warmup_steps": 10, "eval_every": 25, "eval_batches": 8, "save_every": 50,
        "early_stopping_patience": 3, "lora": {"rank": 16, "alpha": 32, "dropout": 0.05},
    },
    # Short rows and a higher rate: a 2-core CPU trains the 150-post sample in a few minutes.
    cpu_defaults={
        "max_seq_len": 256, "batch_size": 2, "grad_accum": 1, "learning_rate": 1e-3, "epochs": 2,
        "warmup_steps": 3, "eval_every": 20, "eval_batches": 2, "save_every": 20,
        "early_stopping_patience": 2, "lora": {"rank": 8, "alpha": 16, "dropout": 0.0},
    },
    export_defaults={"quants": ["Q4_K_M"], "verify": True, "ollama": True},
    # ~50 tokens/s from llama.cpp on 2 cores: few samples, but long enough to reach the hashtags.
    eval_samples=6,
    eval_max_tokens=160,
)  # fmt: skip
