"""Shared pytest configuration: paths to the real data the tests use."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PACKAGE_DATA = REPO / "src" / "cohabit" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (real public traces); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is not beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def package_data() -> Path:
    """The data shipped inside the package (openb trace, FGD published curves)."""
    return PACKAGE_DATA
