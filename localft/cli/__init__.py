"""Commands: the `localft` CLI and what the terminal shows."""
