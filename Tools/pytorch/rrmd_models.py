"""PyTorch twins of the rrmd architecture registry (Sources/Models).

Module and attribute names are chosen so that `state_dict()` keys are exactly the tensor names rrmd
uses in its checkpoints (design.md section 3): `conv1.weight`, `layers.0.bn1.running_mean`,
`layer1.0.shortcut.0.weight`, `features.4.bias`, `fc.weight`, ...

Every model
  * starts with `normalize` (per-channel `(x - mean) / std`; mean/std are non-persistent buffers, so
    they are not in the state_dict), takes inputs [N, C, H, W] in [0, 1];
  * has `body(x)` returning the architecture's own features [N, D], `representation(x)` returning
    the representation (the vector fed to the final Linear) and
    `forward(x, return_representation=False)` returning logits, or `(logits, representation)`;
  * optionally (`projection=P`) has a projection head `projection = nn.Linear(D, P, bias=False)`
    between body and classifier, as an RRM student whose width differs from its teacher's has
    (design.md section 1): representation = projection(body(x)), classifier nn.Linear(P, K).
    `projection_bias=True` gives that Linear a bias (rrm.projection_bias; a study option).
    Without it there is no `projection` module and the state_dict is unchanged.

Widths: `ch(c) = max(1, round(c * width_mult))` with Python's `round` (ties to even).

Build a model with `build(arch, in_channels, height, width, num_classes, width_mult, mean, std,
projection, projection_bias)`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = ("mlp", "cnn-small", "resnet20", "resnet18", "vgg11", "mobilenetv2", "preactresnet18", "resnet50",
         "wideresnet-28-10")


def make_ch(width_mult):
    """Channel-count scaler: ch(c) = max(1, round(c * width_mult)), ties to even like Python."""
    return lambda c: max(1, round(c * width_mult))


class Normalize(nn.Module):
    """(x - mean[c]) / std[c]; the constants are not part of the state_dict."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Shared head and forward(): subclasses define `body(x)`, the name of their final Linear
    (`head`), and call `attach_head` last in __init__."""

    head = "fc"

    projection_bias = False  # set by build() before __init__ runs attach_head

    def attach_head(self, width, num_classes, projection):
        """Optional projection, then the classifier. Called where each model used to create its
        final Linear, so that without a projection the parameters are drawn from the RNG in the
        same order as before (the golden fixtures depend on it)."""
        self.projection = None
        if projection is not None:
            if not 1 <= projection <= 65536:
                raise ValueError(f"projection width {projection} outside 1..65536")
            self.projection = nn.Linear(width, projection, bias=self.projection_bias)
            width = projection
        setattr(self, self.head, nn.Linear(width, num_classes))

    def representation(self, x):
        z = self.body(x)
        return z if self.projection is None else self.projection(z)

    def forward(self, x, return_representation=False):
        rep = self.representation(x)
        logits = getattr(self, self.head)(rep)
        return (logits, rep) if return_representation else logits


# ----------------------------------------------------------------------------- mlp
class MLP(Classifier):
    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.fc1 = nn.Linear(c * h * w, ch(256))
        self.fc2 = nn.Linear(ch(256), ch(256))
        self.attach_head(ch(256), num_classes, projection)

    def body(self, x):
        x = self.normalize(x).flatten(1)
        x = F.relu(self.fc1(x))
        return F.relu(self.fc2(x))


# ----------------------------------------------------------------------------- cnn-small
class CNNSmall(Classifier):
    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(c, ch(32), 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch(32))
        self.conv2 = nn.Conv2d(ch(32), ch(64), 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch(64))
        self.fc1 = nn.Linear(ch(64) * (h // 4) * (w // 4), ch(128))
        self.attach_head(ch(128), num_classes, projection)

    def body(self, x):
        x = self.normalize(x)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return F.relu(self.fc1(x.flatten(1)))


# ----------------------------------------------------------------------------- resnet20
class BasicBlockA(nn.Module):
    """CIFAR ResNet block with the parameter-free option-A shortcut: subsample by the stride,
    then zero-pad channels (pad // 2 before, the rest after)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.stride != 1 or self.pad:
            sc = x[:, :, :: self.stride, :: self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + sc)


class ResNet20(Classifier):
    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None, n=3):
        super().__init__()
        self.normalize = Normalize(mean, std)
        widths = [ch(16), ch(32), ch(64)]
        self.conv1 = nn.Conv2d(c, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks, cin = [], widths[0]
        for i, cout in enumerate(widths):
            for j in range(n):
                blocks.append(BasicBlockA(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.attach_head(cin, num_classes, projection)

    def body(self, x):
        x = F.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layers(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


# ----------------------------------------------------------------------------- resnet18
class BasicBlockB(nn.Module):
    """ResNet block with a projection shortcut (1x1 conv + BN) when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(Classifier):
    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(c, ch(64), 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch(64))
        cin = ch(64)
        for i, (width, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
            cout = ch(width)
            stage = nn.Sequential(BasicBlockB(cin, cout, stride), BasicBlockB(cout, cout, 1))
            setattr(self, f"layer{i + 1}", stage)
            cin = cout
        self.attach_head(cin, num_classes, projection)

    def body(self, x):
        x = F.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


# ----------------------------------------------------------------------------- vgg11
VGG11_CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


class VGG11(Classifier):
    head = "classifier"

    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None):
        super().__init__()
        self.normalize = Normalize(mean, std)
        layers, cin = [], c
        for v in VGG11_CFG:
            if v == "M":
                # A pool that would shrink a 1-pixel side becomes Identity, so layer indices (and
                # state_dict keys) never depend on the image size.
                if h >= 2 and w >= 2:
                    layers.append(nn.MaxPool2d(2, 2))
                    h, w = h // 2, w // 2
                else:
                    layers.append(nn.Identity())
            else:
                layers += [nn.Conv2d(cin, ch(v), 3, padding=1), nn.BatchNorm2d(ch(v)), nn.ReLU(inplace=True)]
                cin = ch(v)
        self.features = nn.Sequential(*layers)
        self.attach_head(cin, num_classes, projection)

    def body(self, x):
        x = self.features(self.normalize(x))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


# ----------------------------------------------------------------------------- mobilenetv2
MOBILENETV2_CFG = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                   (6, 160, 3, 2), (6, 320, 1, 1)]  # (expansion, out, num_blocks, stride)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 (stride) -> project (1x1, linear); residual only at stride 1."""

    def __init__(self, cin, cout, expansion, stride):
        super().__init__()
        self.stride = stride
        planes = expansion * cin
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride == 1 and cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(Classifier):
    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(c, ch(32), 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch(32))
        blocks, cin = [], ch(32)
        for expansion, out, n, stride in MOBILENETV2_CFG:
            for s in [stride] + [1] * (n - 1):
                blocks.append(InvertedResidual(cin, ch(out), expansion, s))
                cin = ch(out)
        self.layers = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(cin, ch(1280), 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch(1280))
        self.attach_head(ch(1280), num_classes, projection)

    def body(self, x):
        x = F.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layers(x)
        x = F.relu(self.bn2(self.conv2(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


# ----------------------------------------------------------------------------- registry
# ----------------------------------------------------------------------------- preactresnet18
class PreActBlock(nn.Module):
    """RobustBench's PreActBlock (resnet.py): relu(bn1(x)) feeds conv1; the 1x1 shortcut, where
    the shape changes, reads the raw input x (its default out_shortcut=False); no activation
    after the sum."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        skip = self.shortcut(x) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + skip


class PreActResNet18(Classifier):
    head = "linear"

    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(c, ch(64), 3, 1, 1, bias=False)
        cin = ch(64)
        for i, (width, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
            cout = ch(width)
            setattr(self, f"layer{i + 1}", nn.Sequential(PreActBlock(cin, cout, stride), PreActBlock(cout, cout, 1)))
            cin = cout
        self.attach_head(cin, num_classes, projection)

    def body(self, x):
        x = self.conv1(self.normalize(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


# ----------------------------------------------------------------------------- resnet50
class Bottleneck(nn.Module):
    """RobustBench's Bottleneck (resnet.py): 1x1, 3x3 (strided), 1x1 x4 convolutions with BN;
    1x1-conv + BN shortcut where the shape changes; ReLU after the sum."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != 4 * planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, 4 * planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(4 * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet50(Classifier):
    head = "linear"

    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(c, ch(64), 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch(64))
        cin = ch(64)
        for i, (base, count) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            planes = ch(base)
            blocks = []
            for j in range(count):
                blocks.append(Bottleneck(cin, planes, 2 if i > 0 and j == 0 else 1))
                cin = 4 * planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.attach_head(cin, num_classes, projection)

    body = ResNet18.body  # the same stem, four stages and pooling


# ----------------------------------------------------------------------------- wideresnet-D-W
class WideBlock(nn.Module):
    """RobustBench's wide_resnet.BasicBlock without dropout: relu(bn1(x)) feeds conv1 and, where
    the width changes, the 1x1 `convShortcut`; no activation after the sum."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.convShortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if cin != cout or stride != 1 else None

    def forward(self, x):
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return out + (x if self.convShortcut is None else self.convShortcut(a))


class WideStage(nn.Module):
    """RobustBench's NetworkBlock: the blocks under `layer`."""

    def __init__(self, blocks):
        super().__init__()
        self.layer = nn.Sequential(*blocks)

    def forward(self, x):
        return self.layer(x)


class WideResNet(Classifier):
    head = "fc"
    depth, widen = 28, 10  # set per name by build()

    def __init__(self, c, h, w, num_classes, ch, mean, std, projection=None):
        super().__init__()
        self.normalize = Normalize(mean, std)
        n = (self.depth - 4) // 6
        cin = ch(16)
        self.conv1 = nn.Conv2d(c, cin, 3, 1, 1, bias=False)
        for i, base in enumerate((16, 32, 64)):
            cout = ch(base * self.widen)
            blocks = []
            for j in range(n):
                blocks.append(WideBlock(cin, cout, 2 if i > 0 and j == 0 else 1))
                cin = cout
            setattr(self, f"block{i + 1}", WideStage(blocks))
        self.bn1 = nn.BatchNorm2d(cin)
        self.attach_head(cin, num_classes, projection)

    def body(self, x):
        x = self.conv1(self.normalize(x))
        x = F.relu(self.bn1(self.block3(self.block2(self.block1(x)))))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


_CLASSES = {"mlp": MLP, "cnn-small": CNNSmall, "resnet20": ResNet20, "resnet18": ResNet18,
            "vgg11": VGG11, "mobilenetv2": MobileNetV2, "preactresnet18": PreActResNet18, "resnet50": ResNet50}


def wide_resnet_shape(arch):
    """(depth, widen) of a `wideresnet-<depth>-<widen>` name, or None."""
    parts = arch.split("-")
    if len(parts) != 3 or parts[0] != "wideresnet" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    depth, widen = int(parts[1]), int(parts[2])
    return (depth, widen) if depth >= 10 and (depth - 4) % 6 == 0 and widen >= 1 else None


def is_known(arch):
    """Whether `arch` is a registry architecture: one of ARCHS or any wideresnet-<depth>-<widen>."""
    return arch in ARCHS or wide_resnet_shape(arch) is not None


def arch_name(text):
    """argparse type for --arch: a registry architecture name."""
    if not is_known(text):
        raise ValueError(f"unknown architecture {text!r}")
    return text


def per_channel(values, default, c):
    """mean or std as one float per channel: None -> default, a scalar or 1-list -> broadcast."""
    if values is None:
        return [default] * c
    if isinstance(values, (int, float)):
        return [float(values)] * c
    values = [float(v) for v in values]
    if len(values) == 1:
        return values * c
    if len(values) != c:
        raise ValueError(f"expected {c} per-channel values, got {len(values)}")
    return values


def build(arch, in_channels, height, width, num_classes, width_mult=1.0, mean=None, std=None, projection=None,
          projection_bias=False):
    """Builds `arch` (one of ARCHS) for inputs [N, in_channels, height, width] in [0, 1];
    `projection` (an int P, or None) adds the projection head `projection.weight` [P, D], with
    `projection.bias` [P] when `projection_bias`."""
    shape = wide_resnet_shape(arch)
    if arch not in _CLASSES and shape is None:
        raise ValueError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}, wideresnet-<depth>-<widen>")
    mean = per_channel(mean, 0.0, in_channels)
    std = per_channel(std, 1.0, in_channels)
    if shape is not None:
        cls = type("WideResNet", (WideResNet,), {"depth": shape[0], "widen": shape[1]})
    else:
        cls = _CLASSES[arch]
    if projection_bias:
        # A class attribute read by attach_head, so the constructors' signatures stay as they are.
        cls = type(cls.__name__, (cls,), {"projection_bias": True})
    return cls(in_channels, height, width, num_classes, make_ch(width_mult), mean, std, projection=projection)
