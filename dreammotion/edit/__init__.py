"""DreamMotion optimisation: masked V-DDS with spatial and temporal self-similarity matching."""

from dreammotion.edit.config import EditConfig
from dreammotion.edit.hooks import KeyCapture, select_spatial_self_attention
from dreammotion.edit.losses import spatial_ssm_loss, temporal_ssm_loss
from dreammotion.edit.optimizer import EditResult, dreammotion_edit

__all__ = [
    "EditConfig",
    "EditResult",
    "KeyCapture",
    "dreammotion_edit",
    "select_spatial_self_attention",
    "spatial_ssm_loss",
    "temporal_ssm_loss",
]
