"""Session fixtures over ``tiny_data``: each tiny data set is built once, under pytest's temporary
folder, and is read-only for the tests (a test that alters data builds its own).

A pytest plugin module, not imported by tests: ``pytest_plugins = ["tiny_data_fixtures"]``.
"""

import os
from pathlib import Path

import pytest

from tiny_data import make_imdb_tarball, make_pacs, make_text, tiny_reviews


@pytest.fixture(scope="session")
def tiny_pacs(tmp_path_factory) -> Path:
    return make_pacs(tmp_path_factory.mktemp("pacs"))


@pytest.fixture(scope="session")
def tiny_imdb(tmp_path_factory) -> Path:
    """aclImdb_v1.tar.gz of 24 reviews, half positive."""
    return make_imdb_tarball(tmp_path_factory.mktemp("imdb") / "aclImdb_v1.tar.gz", tiny_reviews())


@pytest.fixture(scope="session")
def tiny_text(tmp_path_factory) -> Path:
    """4,000 characters: the last 10% (validation) is 400."""
    return make_text(tmp_path_factory.mktemp("text") / "input.txt", 4000)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real data sets (HW3_DATA_DIR); the test skips without them."""
    folder = os.environ.get("HW3_DATA_DIR")
    if not folder:
        pytest.skip("HW3_DATA_DIR is not set")
    return Path(folder)
