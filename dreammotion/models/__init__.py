"""Model backends: loading text-to-video components through one function and a small registry."""

from dreammotion.models.autoencoder import PixelShuffleAutoencoder
from dreammotion.models.loading import T2VModel, load_t2v, ModelLoadError
from dreammotion.models.registry import BACKENDS, BackendConfig, get_backend, load_model, register_backend

__all__ = [
    "PixelShuffleAutoencoder",
    "T2VModel",
    "load_t2v",
    "ModelLoadError",
    "BACKENDS",
    "BackendConfig",
    "get_backend",
    "register_backend",
    "load_model",
]
