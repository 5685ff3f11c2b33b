import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random text-to-video model (pixel-shuffle autoencoder) saved in diffusers layout."""
    from dreammotion.models.tiny import save_tiny_t2v

    return save_tiny_t2v(tmp_path_factory.mktemp("models") / "tiny-ps", vae="pixelshuffle")


@pytest.fixture(scope="session")
def tiny_kl_model_dir(tmp_path_factory):
    """A tiny random text-to-video model with an AutoencoderKL, ZeroScope's structure."""
    from dreammotion.models.tiny import save_tiny_t2v

    return save_tiny_t2v(tmp_path_factory.mktemp("models") / "tiny-kl", vae="kl")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from dreammotion.models import load_t2v

    return load_t2v(tiny_model_dir)
