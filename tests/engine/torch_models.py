"""Model definitions for the PyTorch import tests, written in the styles torchvision and
timm use (torchvision itself cannot be installed beside the CPU torch here): Sequential,
a custom ``forward`` with functional calls, residual classes (a small ResNet with
torchvision's ``BasicBlock`` / ``Bottleneck`` layout), attention with a class token and a
position table. Small sizes: each imports in well under a second."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lenet(classes: int = 10) -> nn.Module:
    """A Sequential LeNet for [1, 16, 16]."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 5, padding=2), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(32, classes))


class Functional(nn.Module):
    """A custom forward with functional calls and tensor methods."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 6)
        self.proj = nn.Linear(6, 6)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = F.max_pool2d(x, 2)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([b, a * 0.5], dim=1)
        x = x.view(x.size(0), -1)
        x = F.gelu(self.fc(x))
        y = x.reshape(-1, 2, 3).transpose(1, 2).permute(0, 2, 1).flatten(1)
        return F.softmax(self.proj(y) + x, dim=-1)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet layout, narrow: ``block`` "basic" or "bottleneck", ``layers``
    blocks per stage, ``width`` channels of the stem."""

    def __init__(self, block: str = "bottleneck", layers=(2, 3, 2), width: int = 8, classes: int = 10):
        super().__init__()
        cls = Bottleneck if block == "bottleneck" else BasicBlock
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        for i, count in enumerate(layers):
            stages.append(self._make_layer(cls, width * 2 ** i, count, stride=1 if i == 0 else 2))
        self.stages = len(stages)
        for i, stage in enumerate(stages, start=1):
            setattr(self, f"layer{i}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 ** (len(layers) - 1) * cls.expansion, classes)
        for m in self.modules():  # non-trivial statistics, so a BatchNorm mix-up shows
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)

    def _make_layer(self, cls, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * cls.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * cls.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * cls.expansion))
        layers = [cls(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * cls.expansion
        layers += [cls(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.stages + 1):
            x = getattr(self, f"layer{i}")(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class Attention(nn.Module):
    """Multi-head self-attention written out (timm's style)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        return self.proj(attn @ v)


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """A ViT: patches by a strided convolution, a class token and a position table held as
    ``nn.Parameter``, ``depth`` encoder blocks, the class token's features to the head."""

    def __init__(self, dim: int = 16, depth: int = 3, patch: int = 4, size: int = 8, classes: int = 5):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        tokens = (size // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.1)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, 1, dim * 2) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class Unmappable(nn.Module):
    """Two ops NetCanvas has no layer for (torch.roll, x.exp)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        x = torch.roll(self.fc(x), 1, dims=1)
        return x.exp() + x


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    """MobileNet v3's block: expand, depthwise, squeeze-and-excite, project; a learned
    per-channel scale (``nn.Parameter``, ConvNeXt's layer scale) on the residual branch."""

    def __init__(self, channels: int, expand: int):
        super().__init__()
        hidden = channels * expand
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.Hardswish())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), nn.Hardswish())
        self.se = SqueezeExcite(hidden, 4)
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.gamma = nn.Parameter(torch.rand(channels) + 0.5)

    def forward(self, x):
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y * self.gamma.view(-1, 1, 1)


class Mixed(nn.Module):
    """Convolutions with repeated inverted residuals, then torch's own transformer layers and
    attention over the pixels as tokens."""

    def __init__(self, channels: int = 8, classes: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.body = nn.Sequential(InvertedResidual(channels, 2), InvertedResidual(channels, 2),
                                  InvertedResidual(channels, 3))
        self.encoder = nn.TransformerEncoderLayer(channels, 2, 16, dropout=0.0, batch_first=True)
        self.attn = nn.MultiheadAttention(channels, 2, batch_first=True)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.body(F.silu(self.stem(x)))
        tokens = x.flatten(2).permute(0, 2, 1)
        tokens = self.encoder(tokens)
        attended, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return F.log_softmax(self.head(attended.mean(dim=1)), dim=1)


class ShapeBranch(nn.Module):
    """Python control flow on the input's shape: torch.fx cannot trace it, torch.export can
    (shapes are known there). Also a class token and a selection, as ATen writes them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.token = nn.Parameter(torch.randn(1, 1, 4))
        self.blocks = nn.Sequential(Residual(4), Residual(4))
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        if x.shape[-1] > 4:
            x = F.max_pool2d(x, 2)
        x = self.blocks(x)
        tokens = torch.cat([self.token.expand(x.shape[0], -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
        return self.fc(tokens[:, 0]) + self.fc(tokens.mean(dim=1)) * 0.5


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + torch.tanh(self.conv(x))


class TorchEncoder(nn.Module):
    """torch's own nn.TransformerEncoder (a torch.nn module NetCanvas has no type for: its
    layers are) over a sequence of feature vectors."""

    def __init__(self, dim: int = 8, layers: int = 2):
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, 2, 16, dropout=0.0, batch_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, 3)

    def forward(self, x):
        return self.head(self.encoder(x).mean(dim=1))
