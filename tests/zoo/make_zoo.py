"""Write torchvision's classic ImageNet models as NetCanvas project files (format version 2).

Run ``python tests/zoo/make_zoo.py``: it writes ``tests/zoo/<name>.netcanvas.json`` for
ResNet-50, MobileNetV2, ViT-B/16, DenseNet-121, EfficientNet-B0 and ShuffleNetV2 x1.0, each
as torchvision builds it with its default arguments (Input [3, 224, 224], 1000 classes).
They are written from ../shared/PROJECT_FORMAT.md only: plain JSON, no NetCanvas import, so
the files test the format document as much as the engine. Blocks keep torchvision's module
names where the format allows (``layer1_0.conv1.weight`` for ``layer1.0.conv1.weight``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
IMAGE = [3, 224, 224]
CLASSES = 1000


class Net:
    """Nodes and edges of one graph (a project's or a block's), built in order: each node
    is fed by the previous one unless ``src`` says otherwise."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.last: str | None = None

    def add(self, node_id: str, type_name: str, src: Any = "", repeat: int = 1, **params: Any) -> str:
        """Add a node; ``src``: "" the previous node, None nothing, a node id, or a list of
        them (``(id, port)`` for an output port other than 0) for input slots 0, 1, ..."""
        node: dict[str, Any] = {"id": node_id, "type": type_name}
        if params:
            node["params"] = params
        if repeat != 1:
            node["repeat"] = repeat
        self.nodes.append(node)
        sources = [self.last] if src == "" else [] if src is None else src if isinstance(src, list) else [src]
        for slot, source in enumerate(sources):
            name, port = source if isinstance(source, tuple) else (source, 0)
            edge: dict[str, Any] = {"source": name, "target": node_id}
            if slot:
                edge["target_port"] = slot
            if port:
                edge["source_port"] = port
            self.edges.append(edge)
        self.last = node_id
        return node_id

    def conv_bn(self, prefix: str, act: str | None, src: Any = "", **conv: Any) -> str:
        """Conv2d without bias, BatchNorm2d, then ``act`` (torchvision's Conv2dNormActivation),
        named ``<prefix>_0``, ``_1``, ``_2``."""
        self.add(f"{prefix}_0", "Conv2d", src, bias=False, **conv)
        last = self.add(f"{prefix}_1", "BatchNorm2d")
        if act:
            last = self.add(f"{prefix}_2", act)
        return last

    def graph(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "edges": self.edges}

    def block(self, **params: Any) -> dict[str, Any]:
        return {"params": params, "graph": self.graph()}


def project(name: str, blocks: dict[str, Any], net: Net) -> dict[str, Any]:
    return {"format": "netcanvas", "version": 2, "name": name, "blocks": blocks, "graph": net.graph()}


# -- ResNet-50 ------------------------------------------------------------------------------
def bottleneck(downsample: bool) -> dict[str, Any]:
    """torchvision's Bottleneck (ResNet v1.5: the stride is on the 3x3 convolution)."""
    b = Net()
    x = b.add("x", "Input", None)
    b.add("conv1", "Conv2d", out_channels="$width", kernel_size=1, bias=False)
    b.add("bn1", "BatchNorm2d")
    b.add("relu1", "ReLU")
    stride = {"stride": "$stride"} if downsample else {}
    b.add("conv2", "Conv2d", out_channels="$width", kernel_size=3, padding=1, bias=False, **stride)
    b.add("bn2", "BatchNorm2d")
    b.add("relu2", "ReLU")
    b.add("conv3", "Conv2d", out_channels="$out", kernel_size=1, bias=False)
    bn3 = b.add("bn3", "BatchNorm2d")
    shortcut = x
    if downsample:
        b.add("downsample_0", "Conv2d", x, out_channels="$out", kernel_size=1, stride="$stride", bias=False)
        shortcut = b.add("downsample_1", "BatchNorm2d")
    b.add("add", "Add", [bn3, shortcut])
    b.add("relu", "ReLU")
    return b.block(width=64, out=256, **({"stride": 1} if downsample else {}))


def resnet50() -> dict[str, Any]:
    n = Net()
    n.add("input", "Input", None, shape=IMAGE)
    n.add("conv1", "Conv2d", out_channels=64, kernel_size=7, stride=2, padding=3, bias=False)
    n.add("bn1", "BatchNorm2d")
    n.add("relu", "ReLU")
    n.add("maxpool", "MaxPool2d", kernel_size=3, stride=2, padding=1)
    for layer, (width, count, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
        n.add(f"layer{layer}_0", "BottleneckDown", width=width, out=4 * width, stride=stride)
        for i in range(1, count):
            n.add(f"layer{layer}_{i}", "Bottleneck", width=width, out=4 * width)
    n.add("avgpool", "AdaptiveAvgPool2d", output_size=1)
    n.add("flatten", "Flatten")
    n.add("fc", "Linear", out_features=CLASSES)
    return project("ResNet-50 (torchvision)",
                   {"Bottleneck": bottleneck(False), "BottleneckDown": bottleneck(True)}, n)


# -- MobileNetV2 ----------------------------------------------------------------------------
def inverted_residual(expand: bool, residual: bool) -> dict[str, Any]:
    """torchvision's MobileNetV2 InvertedResidual: [1x1 expansion,] 3x3 depthwise, linear
    1x1 projection, [+ input]."""
    b = Net()
    x = b.add("x", "Input", None)
    if expand:
        b.conv_bn("conv_0", "ReLU6", out_channels="$hidden", kernel_size=1)
    b.conv_bn("conv_dw", "ReLU6", out_channels="$hidden", kernel_size=3, padding=1, groups="$hidden",
              **({} if residual else {"stride": "$stride"}))
    b.add("conv_project", "Conv2d", out_channels="$out", kernel_size=1, bias=False)
    last = b.add("conv_bn", "BatchNorm2d")
    if residual:
        b.add("add", "Add", [last, x])
    return b.block(hidden=96, out=24, **({} if residual else {"stride": 1}))


def mobilenet_v2() -> dict[str, Any]:
    n = Net()
    n.add("input", "Input", None, shape=IMAGE)
    n.conv_bn("features_0", "ReLU6", out_channels=32, kernel_size=3, stride=2, padding=1)
    channels, index = 32, 1
    for t, c, count, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        hidden = channels * t
        kind = "InvertedResidual" if t != 1 else "InvertedResidualNoExpand"
        n.add(f"features_{index}", kind, hidden=hidden, out=c, stride=s)
        index += 1
        if count > 1:  # the others keep the shape: one repeated residual node
            n.add(f"features_{index}", "InvertedResidualRes", repeat=count - 1, hidden=c * t, out=c)
            index += count - 1
        channels = c
    n.conv_bn(f"features_{index}", "ReLU6", out_channels=1280, kernel_size=1)
    n.add("avgpool", "AdaptiveAvgPool2d", output_size=1)
    n.add("flatten", "Flatten")
    n.add("classifier_0", "Dropout", p=0.2)
    n.add("classifier_1", "Linear", out_features=CLASSES)
    return project("MobileNetV2 (torchvision)", {
        "InvertedResidualNoExpand": inverted_residual(False, False),
        "InvertedResidual": inverted_residual(True, False),
        "InvertedResidualRes": inverted_residual(True, True)}, n)


# -- ViT-B/16 -------------------------------------------------------------------------------
def encoder_block() -> dict[str, Any]:
    """torchvision's vision_transformer EncoderBlock (pre-norm)."""
    b = Net()
    x = b.add("x", "Input", None)
    b.add("ln_1", "LayerNorm", eps="$eps")
    b.add("self_attention", "MultiheadAttention", num_heads="$heads", dropout="$attention_dropout")
    b.add("dropout", "Dropout", p="$dropout")
    mid = b.add("add_1", "Add", ["dropout", x])
    b.add("ln_2", "LayerNorm", eps="$eps")
    b.add("mlp_0", "Linear", out_features="$mlp_dim")
    b.add("mlp_1", "GELU")
    b.add("mlp_2", "Dropout", p="$dropout")
    b.add("mlp_3", "Linear", out_features="$hidden_dim")
    b.add("mlp_4", "Dropout", p="$dropout")
    b.add("add_2", "Add", ["mlp_4", mid])
    return b.block(heads=12, hidden_dim=768, mlp_dim=3072, dropout=0.0, attention_dropout=0.0, eps=1e-6)


def vit_b_16() -> dict[str, Any]:
    n = Net()
    n.add("input", "Input", None, shape=IMAGE)
    n.add("conv_proj", "Conv2d", out_channels=768, kernel_size=16, stride=16)
    n.add("flatten", "Flatten", start_dim=2)  # [768, 14, 14] -> [768, 196]
    n.add("patches", "Transpose", dim0=1, dim1=2)  # -> [196, 768]
    n.add("class_token", "ClassToken")  # -> [197, 768]
    n.add("pos_embedding", "PositionalEmbedding")
    n.add("encoder_dropout", "Dropout", p=0.0)
    n.add("encoder_layers", "EncoderBlock", repeat=12)
    n.add("encoder_ln", "LayerNorm", eps=1e-6)
    n.add("cls", "Select", dim=1, index=0)
    n.add("heads_head", "Linear", out_features=CLASSES)
    return project("ViT-B/16 (torchvision)", {"EncoderBlock": encoder_block()}, n)


# -- DenseNet-121 ---------------------------------------------------------------------------
def dense_layer() -> dict[str, Any]:
    """torchvision's _DenseLayer (bn_size 4, no dropout), with the concatenation of its input
    and its new features that _DenseBlock does, so the layer can repeat."""
    b = Net()
    x = b.add("x", "Input", None)
    b.add("norm1", "BatchNorm2d")
    b.add("relu1", "ReLU")
    b.add("conv1", "Conv2d", out_channels="$bottleneck", kernel_size=1, bias=False)
    b.add("norm2", "BatchNorm2d")
    b.add("relu2", "ReLU")
    new = b.add("conv2", "Conv2d", out_channels="$growth", kernel_size=3, padding=1, bias=False)
    b.add("concat", "Concat", [x, new])
    return b.block(growth=32, bottleneck=128)


def transition() -> dict[str, Any]:
    b = Net()
    b.add("x", "Input", None)
    b.add("norm", "BatchNorm2d")
    b.add("relu", "ReLU")
    b.add("conv", "Conv2d", out_channels="$out", kernel_size=1, bias=False)
    b.add("pool", "AvgPool2d", kernel_size=2, stride=2)
    return b.block(out=128)


def densenet121() -> dict[str, Any]:
    n = Net()
    n.add("input", "Input", None, shape=IMAGE)
    n.add("conv0", "Conv2d", out_channels=64, kernel_size=7, stride=2, padding=3, bias=False)
    n.add("norm0", "BatchNorm2d")
    n.add("relu0", "ReLU")
    n.add("pool0", "MaxPool2d", kernel_size=3, stride=2, padding=1)
    channels = 64
    for i, count in enumerate([6, 12, 24, 16], 1):
        n.add(f"denseblock{i}", "DenseLayer", repeat=count)
        channels += 32 * count
        if i < 4:
            channels //= 2
            n.add(f"transition{i}", "Transition", out=channels)
    n.add("norm5", "BatchNorm2d")
    n.add("relu", "ReLU")
    n.add("avgpool", "AdaptiveAvgPool2d", output_size=1)
    n.add("flatten", "Flatten")
    n.add("classifier", "Linear", out_features=CLASSES)
    return project("DenseNet-121 (torchvision)", {"DenseLayer": dense_layer(), "Transition": transition()}, n)


# -- EfficientNet-B0 ------------------------------------------------------------------------
def squeeze_excitation() -> dict[str, Any]:
    """torchvision.ops.SqueezeExcitation with SiLU: input * sigmoid(fc2(silu(fc1(pool(input)))))."""
    b = Net()
    x = b.add("x", "Input", None)
    b.add("avgpool", "AdaptiveAvgPool2d", output_size=1)
    b.add("fc1", "Conv2d", out_channels="$squeeze", kernel_size=1)
    b.add("activation", "SiLU")
    b.add("fc2", "Conv2d", out_channels="$channels", kernel_size=1)
    gate = b.add("scale_activation", "Sigmoid")
    b.add("scale", "Multiply", [x, gate])
    return b.block(channels=96, squeeze=4)


def mbconv(expand: bool, residual: bool) -> dict[str, Any]:
    """torchvision's EfficientNet MBConv: [1x1 expansion,] kxk depthwise, squeeze-and-
    excitation, 1x1 projection, [stochastic depth + input]."""
    b = Net()
    x = b.add("x", "Input", None)
    if expand:
        b.conv_bn("block_0", "SiLU", out_channels="$hidden", kernel_size=1)
    b.conv_bn("block_dw", "SiLU", out_channels="$hidden", kernel_size="$kernel", padding="$padding",
              groups="$hidden", **({} if residual else {"stride": "$stride"}))
    b.add("block_se", "SqueezeExcitation", channels="$hidden", squeeze="$squeeze")
    b.conv_bn("block_project", None, out_channels="$out", kernel_size=1)
    params: dict[str, Any] = {"hidden": 96, "out": 24, "kernel": 3, "padding": 1, "squeeze": 4}
    if residual:
        b.add("stochastic_depth", "StochasticDepth", p="$p", mode="row")
        b.add("add", "Add", ["stochastic_depth", x])
        params["p"] = 0.0
    else:
        params["stride"] = 1
    return b.block(**params)


def efficientnet_b0() -> dict[str, Any]:
    n = Net()
    n.add("input", "Input", None, shape=IMAGE)
    n.conv_bn("features_0", "SiLU", out_channels=32, kernel_size=3, stride=2, padding=1)
    stages = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
              (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
    total = sum(s[-1] for s in stages)
    block_id = 0
    for stage, (t, k, s, cin, cout, count) in enumerate(stages, 1):
        for i in range(count):
            if i:
                cin, s = cout, 1
            p = {"hidden": cin * t, "out": cout, "kernel": k, "padding": (k - 1) // 2,
                 "squeeze": max(1, cin // 4)}
            sd = 0.2 * block_id / total
            if s == 1 and cin == cout:
                n.add(f"features_{stage}_{i}", "MBConvRes", p=sd, **p)
            else:  # torchvision's stochastic depth only acts on residual blocks
                n.add(f"features_{stage}_{i}", "MBConv" if t != 1 else "MBConvNoExpand", stride=s, **p)
            block_id += 1
    n.conv_bn("features_8", "SiLU", out_channels=1280, kernel_size=1)
    n.add("avgpool", "AdaptiveAvgPool2d", output_size=1)
    n.add("flatten", "Flatten")
    n.add("classifier_0", "Dropout", p=0.2)
    n.add("classifier_1", "Linear", out_features=CLASSES)
    return project("EfficientNet-B0 (torchvision)", {
        "SqueezeExcitation": squeeze_excitation(),
        "MBConvNoExpand": mbconv(False, False),
        "MBConv": mbconv(True, False),
        "MBConvRes": mbconv(True, True)}, n)


# -- ShuffleNetV2 x1.0 ----------------------------------------------------------------------
def shuffle_unit(down: bool) -> dict[str, Any]:
    """torchvision's ShuffleNetV2 InvertedResidual: stride 1 splits the channels in halves
    and transforms the second; stride 2 transforms the whole input twice (branch1, branch2);
    then concatenation and a channel shuffle with 2 groups."""
    b = Net()
    x = b.add("x", "Input", None)
    if down:
        b.add("branch1_0", "Conv2d", x, out_channels="$channels", kernel_size=3, stride=2, padding=1,
              groups="$channels", bias=False)
        b.add("branch1_1", "BatchNorm2d")
        b.add("branch1_2", "Conv2d", out_channels="$branch", kernel_size=1, bias=False)
        b.add("branch1_3", "BatchNorm2d")
        first = b.add("branch1_4", "ReLU")
        src = x
    else:
        split = b.add("split", "Split", x, sizes="$sizes", dim=1)
        first, src = (split, 0), (split, 1)
    b.add("branch2_0", "Conv2d", src, out_channels="$branch", kernel_size=1, bias=False)
    b.add("branch2_1", "BatchNorm2d")
    b.add("branch2_2", "ReLU")
    b.add("branch2_3", "Conv2d", out_channels="$branch", kernel_size=3, stride=2 if down else 1, padding=1,
          groups="$branch", bias=False)
    b.add("branch2_4", "BatchNorm2d")
    b.add("branch2_5", "Conv2d", out_channels="$branch", kernel_size=1, bias=False)
    b.add("branch2_6", "BatchNorm2d")
    second = b.add("branch2_7", "ReLU")
    b.add("concat", "Concat", [first, second])
    b.add("shuffle", "ChannelShuffle", groups=2)
    return b.block(channels=24, branch=58) if down else b.block(branch=58, sizes=[58, 58])


def shufflenet_v2_x1_0() -> dict[str, Any]:
    n = Net()
    n.add("input", "Input", None, shape=IMAGE)
    n.conv_bn("conv1", "ReLU", out_channels=24, kernel_size=3, stride=2, padding=1)
    n.add("maxpool", "MaxPool2d", kernel_size=3, stride=2, padding=1)
    channels = 24
    for stage, (count, out) in enumerate([(4, 116), (8, 232), (4, 464)], 2):
        half = out // 2
        n.add(f"stage{stage}_0", "ShuffleDown", channels=channels, branch=half)
        n.add(f"stage{stage}_1", "ShuffleUnit", repeat=count - 1, branch=half, sizes=[half, half])
        channels = out
    n.conv_bn("conv5", "ReLU", out_channels=1024, kernel_size=1)
    n.add("mean", "Mean", dims=[2, 3])
    n.add("fc", "Linear", out_features=CLASSES)
    return project("ShuffleNetV2 x1.0 (torchvision)",
                   {"ShuffleDown": shuffle_unit(True), "ShuffleUnit": shuffle_unit(False)}, n)


# torchvision's own figures (the ``num_params`` of each model's ImageNet weights)
MODELS = {
    "resnet50": (resnet50, 25_557_032),
    "mobilenet_v2": (mobilenet_v2, 3_504_872),
    "vit_b_16": (vit_b_16, 86_567_656),
    "densenet121": (densenet121, 7_978_856),
    "efficientnet_b0": (efficientnet_b0, 5_288_548),
    "shufflenet_v2_x1_0": (shufflenet_v2_x1_0, 2_278_604),
}


def dumps(value: Any, indent: int = 0) -> str:
    """JSON with short objects and lists on one line (one node or edge a line)."""
    flat = json.dumps(value)
    if len(flat) + indent <= 110 or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + dumps(v, indent + 2) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def main(folder: Path = HERE) -> list[Path]:
    written = []
    for name, (make, _) in MODELS.items():
        path = folder / f"{name}.netcanvas.json"
        path.write_text(dumps(make()) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(p)
