"""The suite never writes into the user's real data folder (where their runs and models live)."""

from __future__ import annotations

import os

from localft.paths import localft_home
from tests.conftest import folder_listing, real_data_folder


def test_home_during_tests_is_never_the_real_folder():
    assert os.environ["LOCALFT_HOME"]
    assert localft_home().resolve() != real_data_folder().resolve()


def test_real_user_data_folder_untouched(real_data_before):
    """Runs last (conftest orders it): nothing appeared in, or changed under, the real folder."""
    path, before = real_data_before
    assert path == real_data_folder()
    assert folder_listing(path) == before, f"the test suite wrote into the real data folder {path}"
