"""A run's life: its folder, state, worker process, rank group, checkpoints and export."""
