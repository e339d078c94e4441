"""Errors a user can cause. The CLI prints their message in one or two lines and exits with code 2."""


class LocalftError(Exception):
    """Base for every error a user can cause and fix; the message says what happened and what to do."""


class ConfigError(LocalftError):
    """A spec, preset or option value is invalid."""


class DataError(LocalftError):
    """An export, dataset or file cannot be read or keeps no usable examples."""


class ModelError(LocalftError):
    """A model id or folder cannot be resolved or loaded."""


class BackendUnavailable(LocalftError):
    """The chosen training backend cannot run on this machine."""


class DoesNotFit(LocalftError):
    """The run would need more memory (or disk) than this machine has."""


class RunError(LocalftError):
    """A run directory is missing, busy or in a state that forbids the action."""


class ExportError(LocalftError):
    """Merging, converting, quantizing or verifying a model failed for a reason the user can act on."""


class NoChatTemplate(ModelError, DataError):
    """Chat rows met a model without a chat template: a problem of the model and of the data alike."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"{model} has no chat template, which chat rows need; use an instruct model or add chat_template.jinja"
        )
