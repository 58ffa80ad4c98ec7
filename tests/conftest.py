"""Shared fixtures. Fixture files are made by the tests; real models come from fastspec.models."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see DESIGN.md: spinning threads collapse here

import pytest  # noqa: E402

import fastspec  # noqa: E402


@pytest.fixture(scope="session")
def smollm2_path():
    """The real SmolLM2-135M-Instruct Q4_1 GGUF (fetched once into the cache)."""
    return fastspec.models.path("smollm2-135m-instruct", quiet=True)


@pytest.fixture(scope="session")
def gemma3_path():
    """The real Gemma 3 270M GGUF (fetched once into the cache)."""
    return fastspec.models.path("gemma3-270m", quiet=True)
