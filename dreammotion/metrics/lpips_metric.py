"""Framewise LPIPS between the input clip and the edit (the ``lpips`` package), optionally outside the mask.

The ``lpips`` package ships its linear heads, but its AlexNet/VGG16 backbone is torchvision's
ImageNet checkpoint, which torchvision would download. We never download: the checkpoint is taken
from ``lpips.backbone_weights`` (config) or from the torch hub cache, where torchvision itself would
have put it; if it is in neither place the metric is reported missing, naming the file and folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from dreammotion.io.frames import to_tensor
from dreammotion.metrics.results import MetricUnavailable, from_exception, ok

# torchvision's file names for the ImageNet weights the lpips package builds its backbone from.
BACKBONE_CHECKPOINTS = {
    "alex": "alexnet-owt-7be5be79.pth",  # torchvision AlexNet_Weights.IMAGENET1K_V1
    "vgg": "vgg16-397923af.pth",  # torchvision VGG16_Weights.IMAGENET1K_V1
}


def hub_cache_checkpoint(net: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_CHECKPOINTS[net]


def resolve_backbone_weights(net: str, configured: str | None) -> Path:
    """The backbone checkpoint to load, or MetricUnavailable saying exactly which file to put where."""
    if net not in BACKBONE_CHECKPOINTS:
        raise ValueError(f"LPIPS backbone must be one of {sorted(BACKBONE_CHECKPOINTS)}, got {net!r}")
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise MetricUnavailable(
                f"LPIPS backbone weights {path} (config lpips.backbone_weights) do not exist; "
                f"it should be torchvision's {BACKBONE_CHECKPOINTS[net]}"
            )
        return path
    cached = hub_cache_checkpoint(net)
    if not cached.is_file():
        raise MetricUnavailable(
            f"LPIPS-{net} needs torchvision's ImageNet backbone {BACKBONE_CHECKPOINTS[net]}: put it at {cached} "
            "(the torch hub cache) or set config lpips.backbone_weights to its path"
        )
    return cached


def _torchvision_features(net: str, weights: Path) -> torch.nn.Sequential:
    """The convolutional part (``features.*``) of a torchvision AlexNet/VGG16 checkpoint."""
    import torchvision

    state = torch.load(weights, map_location="cpu", weights_only=True)
    features_state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    if not features_state:
        raise MetricUnavailable(f"{weights} holds no 'features.*' tensors: it is not a torchvision {net} checkpoint")
    model = torchvision.models.alexnet(weights=None) if net == "alex" else torchvision.models.vgg16(weights=None)
    model.features.load_state_dict(features_state)  # strict: every backbone layer must be in the file
    return model.features


def copy_backbone(lpips_model: torch.nn.Module, features: torch.nn.Sequential) -> None:
    """Copy torchvision `features` into the lpips backbone, whose slices keep torchvision's layer indices."""
    for backbone_slice in lpips_model.net.children():
        for index, layer in backbone_slice.named_children():
            layer.load_state_dict(features[int(index)].state_dict())


def load_lpips(net: str = "alex", backbone_weights: str | None = None, device: str = "cpu") -> torch.nn.Module:
    """lpips.LPIPS with its shipped linear heads and the ImageNet backbone read from a local file."""
    import lpips

    weights = resolve_backbone_weights(net, backbone_weights)
    # pnet_rand=True stops torchvision from downloading; the real backbone is copied in right after.
    # lpips 0.1.4 still passes torchvision's deprecated `pretrained=` argument: silence only that.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision.models._utils")
        model = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
    copy_backbone(model, _torchvision_features(net, weights))
    model.backbone_source = str(weights)
    return model.eval().to(device)


@torch.no_grad()
def _lpips_batches(model: torch.nn.Module, frames_a: np.ndarray, frames_b: np.ndarray, batch_size: int = 8) -> torch.Tensor:
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(frames_a), batch_size):
        a = to_tensor(frames_a[start : start + batch_size]).to(device)
        b = to_tensor(frames_b[start : start + batch_size]).to(device)
        outputs.append(model(a, b)[:, 0].float().cpu())
    return torch.cat(outputs)


def lpips_whole_frame(model: torch.nn.Module, frames_a: np.ndarray, frames_b: np.ndarray) -> list[float]:
    """Per-frame standard LPIPS (each layer's map averaged at its own resolution), uint8 (F, H, W, 3) clips."""
    spatial = model.spatial
    model.spatial = False  # the lpips forward reads this flag: False gives the standard scalar per image
    try:
        return _lpips_batches(model, frames_a, frames_b).flatten().tolist()
    finally:
        model.spatial = spatial


def lpips_in_region(model: torch.nn.Module, frames_a: np.ndarray, frames_b: np.ndarray, region: np.ndarray) -> list[float]:
    """Per-frame mean of the spatial LPIPS map (layers upsampled to the frame) over `region` (F, H, W) bool."""
    weights = torch.from_numpy(region.astype(np.float32))
    counts = weights.sum(dim=(1, 2))
    if (counts == 0).any():
        empty = [int(i) for i in torch.nonzero(counts == 0).flatten()]
        raise MetricUnavailable(f"no pixels outside the mask in frame(s) {empty}: LPIPS outside the mask is undefined")
    spatial = model.spatial
    model.spatial = True
    try:
        maps = _lpips_batches(model, frames_a, frames_b)
    finally:
        model.spatial = spatial
    return ((maps * weights).sum(dim=(1, 2)) / counts).tolist()


def compute_lpips_metrics(
    input_frames: np.ndarray,
    edit_frames: np.ndarray,
    masks: np.ndarray,
    *,
    net: str = "alex",
    backbone_weights: str | None = None,
    outside_mask: bool = True,
    device: str = "cpu",
    model: torch.nn.Module | None = None,
) -> dict:
    """``lpips_{net}`` (whole frame) and, if asked, ``lpips_{net}_outside_mask`` (pixels with mask < 0.5)."""
    names = [f"lpips_{net}"] + ([f"lpips_{net}_outside_mask"] if outside_mask else [])
    try:
        model = model if model is not None else load_lpips(net, backbone_weights, device)
    except Exception as err:  # missing weights -> missing; a broken file -> failed; both with the reason
        return {name: from_exception(err) for name in names}
    backbone = getattr(model, "backbone_source", "random backbone (test)")
    results = {}
    regions = {names[0]: None}
    if outside_mask:
        regions[names[1]] = masks < 0.5
    for name, region in regions.items():
        try:
            if region is None:
                per_frame = lpips_whole_frame(model, input_frames, edit_frames)
            else:
                per_frame = lpips_in_region(model, input_frames, edit_frames, region)
            results[name] = ok(float(np.mean(per_frame)), per_frame=per_frame, backbone_weights=backbone)
        except Exception as err:  # recorded as failed/missing with its reason, never dropped
            results[name] = from_exception(err)
    return results
