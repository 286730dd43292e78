"""The zoo's networks in plain PyTorch (``torch.nn`` only), for ``bench_analyze.py``.

torchvision cannot be imported beside the CPU build of torch used here, so its models
are written out again, module for module as torchvision defines them (same layers,
same options, same order in ``forward``); the others as their zoo file's header
describes them:

* ``resnet18`` / ``resnet50`` — ``torchvision.models.resnet``: ``BasicBlock`` /
  ``Bottleneck`` (v1.5: the stride on the 3×3), the projection shortcut
  (``downsample``: 1×1 conv without bias + batchnorm) on the first block of a stage;
* ``googlenet`` — ``torchvision.models.googlenet`` with ``aux_logits=False`` and
  ``transform_input=False``: ``BasicConv2d`` (conv without bias, batchnorm eps 0.001,
  ReLU), ``Inception`` with its 3×3 "5×5" branch, the ``ceil_mode`` pools;
* ``vgg16`` — ``torchvision.models.vgg16`` (configuration D, no batchnorm), with
  ``AdaptiveAvgPool2d((7, 7))`` and the 25,088-input classifier;
* ``alexnet`` — ``torchvision.models.alexnet`` (the single-GPU 64/192/384/256/256
  variant), with ``AdaptiveAvgPool2d((6, 6))``;
* ``mobilenet_v1`` — Keras' ``keras.applications.MobileNet(alpha=1.0)``: ReLU6, the
  stride-2 convs as ``ZeroPad2d((0, 1, 0, 1))`` then an unpadded conv, batchnorm eps
  0.001, the classifier as a 1×1 conv with bias on the pooled 1×1 map, softmax;
* ``lenet5`` / ``simple_convnet`` — as their zoo files describe them.

Only the structure is torchvision's: weights keep PyTorch's default initialisation
(torchvision's own initialisers change values, not shapes, and the benchmark runs the
models on the meta device, where there are no values).

``MODELS`` maps each zoo name to a constructor; :func:`build` makes a model directly on
a device (``"meta"`` allocates nothing, so VGG-16's 138 M parameters cost no memory).
``tests/test_benchmarks.py`` holds every model to the zoo: the same parameter count and
the same output shape.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


# --- ResNet (torchvision.models.resnet) --------------------------------------------------


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1,
                     bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = planes                         # groups 1, base width 64
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int],
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int,
                    blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion))
        layers: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18() -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2])


def resnet50() -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3])


# --- GoogLeNet (torchvision.models.googlenet, aux_logits=False) ---------------------------


class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, **kwargs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            # torchvision: "Here, kernel_size=3 instead of kernel_size=5 is a known bug."
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(outputs, 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


# --- VGG-16 and AlexNet (torchvision.models.vgg / alexnet) --------------------------------

VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                              512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, features: nn.Module, num_classes: int = 1000,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def make_layers(cfg: list[int | str]) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1),
                       nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


def vgg16() -> VGG:
    return VGG(make_layers(VGG16_CFG))


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


# --- MobileNet v1 (keras.applications.MobileNet, alpha 1.0) -------------------------------


def _keras_conv(in_channels: int, filters: int, stride: int, groups: int = 1
                ) -> list[nn.Module]:
    """A 3×3 conv without bias as Keras writes it: ``padding='same'`` at stride 1,
    ``ZeroPadding2D(((0, 1), (0, 1)))`` then ``'valid'`` at stride 2."""
    if stride == 1:
        return [nn.Conv2d(in_channels, filters, 3, padding=1, groups=groups, bias=False)]
    return [nn.ZeroPad2d((0, 1, 0, 1)),
            nn.Conv2d(in_channels, filters, 3, stride=stride, groups=groups, bias=False)]


def _depthwise_block(channels: int, filters: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        *_keras_conv(channels, channels, stride, groups=channels),
        nn.BatchNorm2d(channels, eps=0.001), nn.ReLU6(),
        nn.Conv2d(channels, filters, 1, bias=False),
        nn.BatchNorm2d(filters, eps=0.001), nn.ReLU6())


#: (channels in, filters, stride) of the 13 depthwise separable blocks
MOBILENET_BLOCKS = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2),
                    (256, 256, 1), (256, 512, 2)] + [(512, 512, 1)] * 5 \
    + [(512, 1024, 2), (1024, 1024, 1)]


def mobilenet_v1(num_classes: int = 1000, dropout: float = 0.001) -> nn.Sequential:
    return nn.Sequential(
        *_keras_conv(3, 32, 2), nn.BatchNorm2d(32, eps=0.001), nn.ReLU6(),
        *[_depthwise_block(c, f, s) for c, f, s in MOBILENET_BLOCKS],
        nn.AdaptiveAvgPool2d(1),                       # GlobalAveragePooling2D(keepdims)
        nn.Dropout(dropout),
        nn.Conv2d(1024, num_classes, 1),               # conv_preds, with bias
        nn.Flatten(),                                  # Reshape((classes,))
        nn.Softmax(dim=1))


# --- the small ones ------------------------------------------------------------------------


def lenet5() -> nn.Sequential:
    """LeNet-5 as the zoo writes it: C3 fully connected, average-pool subsampling
    without coefficients, tanh, a plain dense output, softmax."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(),
        nn.Linear(120, 84), nn.Tanh(),
        nn.Linear(84, 10), nn.Softmax(dim=1))


def simple_convnet() -> nn.Sequential:
    """SimpleConvNet of "Deep Learning from Scratch", chapter 7."""
    return nn.Sequential(
        nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(30 * 12 * 12, 100), nn.ReLU(),
        nn.Linear(100, 10), nn.Softmax(dim=1))


#: zoo name → constructor
MODELS: dict[str, Callable[[], nn.Module]] = {
    "alexnet": AlexNet,
    "googlenet": GoogLeNet,
    "lenet5": lenet5,
    "mobilenet_v1": mobilenet_v1,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "simple_convnet": simple_convnet,
    "vgg16": vgg16,
}


def build(name: str, device: str = "meta") -> nn.Module:
    """Model ``name`` made directly on ``device``, in eval mode (``"meta"``: parameters
    with shapes and no storage)."""
    with torch.device(device):
        model = MODELS[name]()
    return model.to(device).eval()
