import NN
import TensorCore

extension ModelRegistry {
    /// A ResNet basic block: two 3x3 conv-BN pairs and a shortcut, ReLU after the sum.
    static func basicBlock(_ cin: Int, _ cout: Int, stride: Int, optionA: Bool, _ rng: inout RNG) -> ResidualBlock {
        let main = Sequential(convBNReLU("1", cin, cout, stride: stride, &rng))
        let conv2 = Conv2d(cout, cout, kernel: 3, padding: 1, bias: false, rng: &rng)
        var shortcut: Layer? = nil
        if stride != 1 || cin != cout {
            shortcut =
                optionA
                ? ChannelPadShortcut(inChannels: cin, outChannels: cout, stride: stride)
                : projectionShortcut(cin, cout, stride: stride, &rng)
        }
        return ResidualBlock(
            main: main, conv: conv2, bn: BatchNorm2d(cout), tailNames: ("conv2", "bn2"),
            shortcut: shortcut, reluAfterSum: true)
    }

    /// A 1x1-convolution + BatchNorm shortcut, named as `nn.Sequential` names them (`0`, `1`).
    static func projectionShortcut(_ cin: Int, _ cout: Int, stride: Int, _ rng: inout RNG) -> Layer {
        ConvBNReLU(
            Conv2d(cin, cout, kernel: 1, stride: stride, bias: false, rng: &rng), BatchNorm2d(cout),
            relu: false, names: ("0", "1"))
    }

    /// `resnet20`: the CIFAR ResNet of He et al. (3 stages x 3 basic blocks, widths 16/32/64,
    /// option-A shortcuts), exactly as `shared/peers/common.py`; blocks are `layers.0`…`layers.8`.
    static func resnet20(_ c: ModelConfig, _ rng: inout RNG) -> BuiltBody {
        let widths = [16, 32, 64].map(c.scaled)
        var blocks: [Layer] = []
        var cin = widths[0]
        let stem = convBNReLU("1", c.channels, cin, &rng)
        for (stage, w) in widths.enumerated() {
            for j in 0..<3 {
                blocks.append(basicBlock(cin, w, stride: stage > 0 && j == 0 ? 2 : 1, optionA: true, &rng))
                cin = w
            }
        }
        let body = Sequential(
            [normalize(c)] + stem + [("layers", Sequential(indexed: blocks)), ("pool", GlobalAvgPool())])
        return BuiltBody(body: body, width: cin, classifierName: "fc")
    }

    /// `resnet18` (CIFAR variant: 3x3 stem, no max pool): `layer1`…`layer4` of two basic blocks
    /// with 1x1-conv shortcuts, widths 64/128/256/512; 512-d representation.
    static func resnet18(_ c: ModelConfig, _ rng: inout RNG) -> BuiltBody {
        let widths = [64, 128, 256, 512].map(c.scaled)
        var cin = widths[0]
        var children: [(String, Layer)] = [normalize(c)] + convBNReLU("1", c.channels, cin, &rng)
        for (i, w) in widths.enumerated() {
            var blocks: [Layer] = []
            for j in 0..<2 {
                blocks.append(basicBlock(cin, w, stride: i > 0 && j == 0 ? 2 : 1, optionA: false, &rng))
                cin = w
            }
            children.append(("layer\(i + 1)", Sequential(indexed: blocks)))
        }
        children.append(("pool", GlobalAvgPool()))
        return BuiltBody(body: Sequential(children), width: cin, classifierName: "fc")
    }

    /// `resnet50` (CIFAR variant, the paper's student): RobustBench's `ResNet50`, a 3x3 stem
    /// (`conv1`, `bn1`), `layer1`…`layer4` of 3/4/6/3 bottleneck blocks (1x1, 3x3, 1x1
    /// convolutions, 4x expansion, 1x1-conv + BN shortcuts `shortcut.0/1` where the shape
    /// changes), classifier `linear`; 2048-d representation.
    static func resnet50(_ c: ModelConfig, _ rng: inout RNG) -> BuiltBody {
        var cin = c.scaled(64)
        var children: [(String, Layer)] = [normalize(c)] + convBNReLU("1", c.channels, cin, &rng)
        for (i, (base, count)) in zip([64, 128, 256, 512], [3, 4, 6, 3]).enumerated() {
            let planes = c.scaled(base)
            var blocks: [Layer] = []
            for j in 0..<count {
                let stride = i > 0 && j == 0 ? 2 : 1
                let main = Sequential(
                    convBNReLU("1", cin, planes, kernel: 1, padding: 0, &rng)
                        + convBNReLU("2", planes, planes, stride: stride, &rng))
                let conv3 = Conv2d(planes, 4 * planes, kernel: 1, bias: false, rng: &rng)
                let shortcut =
                    stride != 1 || cin != 4 * planes ? projectionShortcut(cin, 4 * planes, stride: stride, &rng) : nil
                blocks.append(
                    ResidualBlock(
                        main: main, conv: conv3, bn: BatchNorm2d(4 * planes), tailNames: ("conv3", "bn3"),
                        shortcut: shortcut, reluAfterSum: true))
                cin = 4 * planes
            }
            children.append(("layer\(i + 1)", Sequential(indexed: blocks)))
        }
        children.append(("pool", GlobalAvgPool()))
        return BuiltBody(body: Sequential(children), width: cin, classifierName: "linear")
    }

    /// `mobilenetv2` (CIFAR variant: stride-1 stem, the first two stages at full resolution):
    /// inverted residual blocks with depthwise 3x3 convolutions; 1280-d representation.
    static func mobileNetV2(_ c: ModelConfig, _ rng: inout RNG) -> BuiltBody {
        let plan: [(expansion: Int, out: Int, blocks: Int, stride: Int)] = [
            (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
        ]
        var cin = c.scaled(32)
        let stem = convBNReLU("1", c.channels, cin, &rng)
        var blocks: [Layer] = []
        for row in plan {
            let cout = c.scaled(row.out)
            for j in 0..<row.blocks {
                let stride = j == 0 ? row.stride : 1
                let planes = row.expansion * cin
                let expand =
                    convBNReLU("1", cin, planes, kernel: 1, padding: 0, &rng)
                    + convBNReLU("2", planes, planes, stride: stride, groups: planes, &rng)
                let conv3 = Conv2d(planes, cout, kernel: 1, bias: false, rng: &rng)
                let bn3 = BatchNorm2d(cout)
                if stride == 1 {
                    let shortcut: Layer? = cin == cout ? nil : projectionShortcut(cin, cout, stride: 1, &rng)
                    blocks.append(
                        ResidualBlock(
                            main: Sequential(expand), conv: conv3, bn: bn3, tailNames: ("conv3", "bn3"),
                            shortcut: shortcut, reluAfterSum: false))
                } else {
                    blocks.append(
                        Sequential(expand + [("", ConvBNReLU(conv3, bn3, relu: false, names: ("conv3", "bn3")))]))
                }
                cin = cout
            }
        }
        let last = c.scaled(1280)
        let body = Sequential(
            [normalize(c)] + stem + [("layers", Sequential(indexed: blocks))]
                + convBNReLU("2", cin, last, kernel: 1, padding: 0, &rng) + [("pool", GlobalAvgPool())])
        return BuiltBody(body: body, width: last, classifierName: "fc")
    }
}
