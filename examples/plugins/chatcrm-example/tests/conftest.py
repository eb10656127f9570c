"""The example plugin's tests: chatcrm.testing's fixtures, with this plugin under test."""

from __future__ import annotations

import pytest


@pytest.fixture
def chatcrm_plugins():
    # The plugin under test; skipped automatically when it is installed (its entry point loads it).
    return ["chatcrm_example"]
