"""Recipes: one command from an input to a chat-ready GGUF. The registry maps names to modules
without importing them, so `localft recipe list` stays fast."""

from __future__ import annotations

import importlib

from localft.errors import ConfigError

REGISTRY: dict[str, str] = {
    "style-clone": "localft.recipes.style_clone:RECIPE",
    "json-extractor": "localft.recipes.json_extractor:RECIPE",
    "classify": "localft.recipes.classify:RECIPE",
    "domain-adapt": "localft.recipes.domain_adapt:RECIPE",
}


def get_recipe(name: str):
    """The `Recipe` registered as `name`."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown recipe {name!r}; `localft recipe list` shows {', '.join(REGISTRY)}")
    module, attr = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)


def all_recipes() -> list:
    return [get_recipe(name) for name in REGISTRY]
