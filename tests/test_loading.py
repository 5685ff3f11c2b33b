"""Loading a model in a dtype goes through from_pretrained(torch_dtype=...), without warnings (issue 18)."""

import contextlib
import logging
import warnings

import pytest
import torch

from dreammotion.models import load_t2v
from dreammotion.upsample.v2v import unet_on


@contextlib.contextmanager
def captured_library_messages():
    """Every warning the diffusers/transformers loggers or Python's warnings emit in the block.

    conftest.py silences both libraries (DIFFUSERS_VERBOSITY=error); this turns them back up to
    WARNING for the block, so a warning that is emitted is seen.
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(f"{record.name}: {record.getMessage()}")

    handler = Collect(level=logging.WARNING)
    loggers = [logging.getLogger("diffusers"), logging.getLogger("transformers")]
    old = [diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()]
    diffusers_logging.set_verbosity_warning()
    transformers_logging.set_verbosity_warning()
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield records
        records.extend(f"warning: {w.message}" for w in caught)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        diffusers_logging.set_verbosity(old[0])
        transformers_logging.set_verbosity(old[1])


def test_capture_sees_the_float32_warning(tiny_kl_model_dir):
    """The capture works: a plain diffusers .to(dtype) cast is caught."""
    from diffusers import UNet3DConditionModel

    unet = UNet3DConditionModel.from_pretrained(tiny_kl_model_dir, subfolder="unet")
    with captured_library_messages() as messages:
        unet.to(dtype=torch.float16)
    assert any("should be kept in float32" in m for m in messages), messages


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("vae", ["kl", "pixelshuffle"])
def test_load_t2v_in_a_dtype_warns_nothing(dtype, vae, tiny_kl_model_dir, tiny_model_dir):
    folder = tiny_kl_model_dir if vae == "kl" else tiny_model_dir
    with captured_library_messages() as messages:
        model = load_t2v(folder, dtype=dtype)
    assert [m for m in messages if "float32" in m or "torch_dtype" in m] == []
    assert {model.unet.dtype, model.text_encoder.dtype, model.vae.dtype} == {dtype}


def test_moving_a_loaded_model_between_dtypes_warns_nothing(tiny_kl_model_dir):
    model = load_t2v(tiny_kl_model_dir)
    with captured_library_messages() as messages:
        model.to("cpu", torch.bfloat16)
        assert model.unet.dtype == model.vae.dtype == torch.bfloat16
        model.to("cpu", torch.float32)
        with unet_on(model, torch.device("cpu"), torch.float16):
            assert model.unet.dtype == torch.float16
    assert model.unet.dtype == torch.float32
    assert [m for m in messages if "float32" in m] == []


def test_the_autoencoder_loads_alone_and_encodes_as_the_whole_model(tiny_model_dir, tiny_model):
    """The encode and decode jobs load only the autoencoder: the same latents and frames as the whole model."""
    import torch

    from dreammotion.models.registry import load_model_autoencoder

    autoencoder = load_model_autoencoder({"pretrained": str(tiny_model_dir), "device": "cpu"})
    assert not hasattr(autoencoder, "unet")
    frames = torch.rand(3, 3, 16, 16) * 2 - 1
    latents = autoencoder.encode_frames(frames)
    assert torch.equal(latents, tiny_model.encode_frames(frames))
    assert torch.equal(autoencoder.decode_latents(latents), tiny_model.decode_latents(latents))
