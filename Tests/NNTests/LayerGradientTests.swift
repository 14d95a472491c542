import NN
import TensorCore
import XCTest

/// Every layer's backward against finite differences, in training and inference mode.
final class LayerGradientTests: XCTestCase {
    let modes: [Mode] = [.training, .inference]

    func testConv2dVariants() {
        var rng = RNG(seed: 10)
        let cases: [(cin: Int, cout: Int, k: Int, s: Int, p: Int, g: Int, bias: Bool, hw: (Int, Int))] = [
            (3, 4, 3, 1, 1, 1, true, (5, 6)),
            (2, 3, 3, 2, 1, 1, false, (7, 5)),
            (4, 6, 1, 1, 0, 1, true, (3, 4)),  // pointwise path
            (4, 4, 3, 1, 1, 4, false, (5, 5)),  // depthwise
            (4, 6, 3, 2, 0, 2, true, (6, 7)),  // grouped, no padding
            (3, 2, 1, 2, 0, 1, false, (5, 5)),  // 1x1 strided (not the pointwise path)
            // Stride-1 windows take dx as a flipped convolution of dy; padding beyond kernel-1
            // does not fit that form and folds columns back with col2im.
            (3, 5, 3, 1, 0, 1, false, (6, 5)),  // no padding: dy padded by 2
            (2, 3, 3, 1, 2, 1, true, (4, 5)),  // padding = kernel - 1: dy not padded
            (2, 2, 3, 1, 3, 1, false, (4, 4)),  // padding > kernel - 1: col2im
            (4, 6, 5, 1, 2, 2, true, (6, 6)),  // 5x5 grouped
            // 3x3, stride 1, padding 1 runs on DirectConv3x3 where the CPU has AVX-512 (the
            // first case too): output channels that do not fill a tile, rows wider than 16.
            (9, 10, 3, 1, 1, 1, false, (3, 20)),
        ]
        for c in cases {
            let conv = Conv2d(
                c.cin, c.cout, kernel: c.k, stride: c.s, padding: c.p, groups: c.g, bias: c.bias, rng: &rng)
            // 5 images: several share a GEMM.
            let x = Tensor.normal(shape: [5, c.cin, c.hw.0, c.hw.1], std: 1, rng: &rng)
            for m in modes { GradientCheck().check(conv, input: x, mode: m) }
        }
    }

    func testBatchNorm2d() {
        var rng = RNG(seed: 11)
        let bn = BatchNorm2d(3)
        bn.weight.value = Tensor.uniform(shape: [3], bound: 1, rng: &rng)
        bn.bias.value = Tensor.normal(shape: [3], std: 0.5, rng: &rng)
        bn.runningMean.value = Tensor(shape: [3], data: [0.1, -0.2, 0.3])
        bn.runningVar.value = Tensor(shape: [3], data: [0.8, 1.2, 1.5])
        let x = Tensor.normal(shape: [3, 3, 4, 5], std: 2, rng: &rng)
        // Training mode couples every element of a channel, so the FD step must be small.
        GradientCheck(h: 3e-3, atol: 3e-3, rtol: 3e-2).check(bn, input: x, mode: .training)
        GradientCheck().check(bn, input: x, mode: .inference)
    }

    func testLinear() {
        var rng = RNG(seed: 12)
        for bias in [true, false] {
            let fc = Linear(7, 5, bias: bias, rng: &rng)
            let x = Tensor.normal(shape: [4, 7], std: 1, rng: &rng)
            for m in modes { GradientCheck().check(fc, input: x, mode: m) }
        }
    }

    func testReLUAndPools() {
        var rng = RNG(seed: 13)
        let x = awayFromZero([2, 3, 6, 7], margin: 0.05, rng: &rng)
        for m in modes {
            GradientCheck().check(ReLU(), input: x, mode: m)
            GradientCheck().check(AvgPool2d(kernel: 2), input: x, mode: m)
            GradientCheck().check(AvgPool2d(kernel: 3, stride: 2, padding: 1), input: x, mode: m)
            GradientCheck().check(GlobalAvgPool(), input: x, mode: m)
            GradientCheck().check(Flatten(), input: x, mode: m)
            GradientCheck().check(Normalize(mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2]), input: x, mode: m)
            GradientCheck().check(ChannelPadShortcut(inChannels: 3, outChannels: 8, stride: 2), input: x, mode: m)
        }
        // Max pooling: distinct values spaced wider than the FD step, so the winner never changes.
        var values = (0..<(2 * 3 * 6 * 7)).map { Float($0) * 0.1 }
        values.seededShuffle(using: &rng)
        let distinct = Tensor(shape: [2, 3, 6, 7], data: values)
        for m in modes {
            GradientCheck().check(MaxPool2d(kernel: 2), input: distinct, mode: m)
            GradientCheck().check(MaxPool2d(kernel: 3, stride: 2, padding: 1), input: distinct, mode: m)
        }
    }

    /// The fused convolution → BatchNorm (→ ReLU) layer, with and without its ReLU, both modes.
    func testConvBNReLU() {
        // Few outputs, so that a finite-difference step rarely crosses a ReLU kink.
        var rng = RNG(seed: 13)
        let x = Tensor.normal(shape: [2, 2, 3, 4], std: 1, rng: &rng)
        for relu in [true, false] {
            let layer = ConvBNReLU(
                Conv2d(2, 3, kernel: 3, padding: 1, bias: relu, rng: &rng), BatchNorm2d(3), relu: relu,
                names: ("conv", "bn"))
            for m in modes { GradientCheck(h: 2e-3, atol: 3e-3, rtol: 3e-2).check(layer, input: x, mode: m) }
        }
    }

    func testResidualBlocks() {
        var rng = RNG(seed: 14)
        // ResNet block with a projection shortcut (1x1 conv + BN), stride 2.
        let conv1 = Conv2d(3, 4, kernel: 3, stride: 2, padding: 1, bias: false, rng: &rng)
        let conv2 = Conv2d(4, 4, kernel: 3, padding: 1, bias: false, rng: &rng)
        let main = Sequential([("", ConvBNReLU(conv1, BatchNorm2d(4), relu: true, names: ("conv1", "bn1")))])
        let shortcut = ConvBNReLU(
            Conv2d(3, 4, kernel: 1, stride: 2, bias: false, rng: &rng), BatchNorm2d(4), relu: false,
            names: ("0", "1"))
        let block = ResidualBlock(
            main: main, conv: conv2, bn: BatchNorm2d(4), tailNames: ("conv2", "bn2"),
            shortcut: shortcut, reluAfterSum: true)
        let x = Tensor.normal(shape: [3, 3, 6, 6], std: 1, rng: &rng)
        GradientCheck(h: 2e-3, atol: 3e-3, rtol: 3e-2).check(block, input: x, mode: .training)
        GradientCheck(h: 2e-3, atol: 3e-3, rtol: 3e-2).check(block, input: x, mode: .inference)
        // Names follow the PyTorch module.
        var names: [String] = []
        block.visitState(prefix: "layer1.0.") { n, _ in names.append(n) }
        XCTAssertEqual(
            names.filter { $0.hasSuffix(".weight") },
            [
                "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.conv2.weight", "layer1.0.bn2.weight",
                "layer1.0.shortcut.0.weight", "layer1.0.shortcut.1.weight",
            ])
        XCTAssertTrue(names.contains("layer1.0.shortcut.1.num_batches_tracked"))
        // An identity shortcut with a ReLU after the sum: the ReLU's mask goes into the last BatchNorm.
        let identity = ResidualBlock(
            main: Sequential([
                (
                    "",
                    ConvBNReLU(
                        Conv2d(3, 3, kernel: 3, padding: 1, bias: false, rng: &rng), BatchNorm2d(3),
                        relu: true, names: ("conv1", "bn1"))
                )
            ]),
            conv: Conv2d(3, 3, kernel: 3, padding: 1, bias: false, rng: &rng), bn: BatchNorm2d(3),
            tailNames: ("conv2", "bn2"),
            shortcut: nil, reluAfterSum: true)
        let xi = Tensor.normal(shape: [2, 3, 2, 2], std: 1, rng: &rng)
        for m in modes { GradientCheck(h: 2e-3, atol: 3e-3, rtol: 3e-2).check(identity, input: xi, mode: m) }
        // Option-A block: channel-padding shortcut, an empty branch before the tail, no activation after the sum.
        let blockA = ResidualBlock(
            main: Sequential([]), conv: Conv2d(2, 4, kernel: 3, stride: 2, padding: 1, bias: false, rng: &rng),
            bn: BatchNorm2d(4), tailNames: ("conv1", "bn1"),
            shortcut: ChannelPadShortcut(inChannels: 2, outChannels: 4, stride: 2), reluAfterSum: false)
        let xa = Tensor.normal(shape: [2, 2, 5, 5], std: 1, rng: &rng)
        for m in modes { GradientCheck(h: 2e-3, atol: 3e-3, rtol: 3e-2).check(blockA, input: xa, mode: m) }
    }

    /// ResNet-50's bottleneck: a branch of two conv-BN-ReLU layers (1x1, then a strided 3x3)
    /// ending in a 1x1 conv and BatchNorm, with a projection shortcut and a ReLU after the sum.
    func testBottleneckBlock() {
        var rng = RNG(seed: 18)
        let main = Sequential([
            (
                "",
                ConvBNReLU(
                    Conv2d(4, 2, kernel: 1, bias: false, rng: &rng), BatchNorm2d(2), relu: true,
                    names: ("conv1", "bn1"))
            ),
            (
                "",
                ConvBNReLU(
                    Conv2d(2, 2, kernel: 3, stride: 2, padding: 1, bias: false, rng: &rng), BatchNorm2d(2),
                    relu: true, names: ("conv2", "bn2"))
            ),
        ])
        let shortcut = ConvBNReLU(
            Conv2d(4, 8, kernel: 1, stride: 2, bias: false, rng: &rng), BatchNorm2d(8), relu: false,
            names: ("0", "1"))
        let block = ResidualBlock(
            main: main, conv: Conv2d(2, 8, kernel: 1, bias: false, rng: &rng), bn: BatchNorm2d(8),
            tailNames: ("conv3", "bn3"), shortcut: shortcut, reluAfterSum: true)
        let x = Tensor.normal(shape: [3, 4, 6, 6], std: 1, rng: &rng)
        for m in modes { GradientCheck(h: 1e-3, atol: 3e-3, rtol: 3e-2).check(block, input: x, mode: m) }
    }

    /// Pre-activation blocks: identity, a projection of the pre-activated input (wide ResNets)
    /// and of the raw input (PreActResNet), in both modes; state named as the public definitions.
    func testPreActBlocks() {
        var rng = RNG(seed: 15)
        let cases: [(cin: Int, cout: Int, stride: Int, input: PreActBlock.ShortcutInput, name: String)] = [
            (3, 3, 1, .raw, "shortcut.0"), (2, 4, 2, .preActivated, "convShortcut"), (2, 3, 1, .raw, "shortcut.0"),
        ]
        for c in cases {
            let block = PreActBlock(
                c.cin, c.cout, stride: c.stride, shortcutInput: c.input, shortcutName: c.name, rng: &rng)
            let x = Tensor.normal(shape: [2, c.cin, 4, 4], std: 1, rng: &rng)
            for m in modes { GradientCheck(h: 2e-3, atol: 3e-3, rtol: 3e-2).check(block, input: x, mode: m) }
            var names: [String] = []
            block.visitState(prefix: "") { n, _ in names.append(n) }
            XCTAssertEqual(
                names.filter { $0.hasSuffix("weight") },
                ["bn1.weight", "conv1.weight", "bn2.weight", "conv2.weight"]
                    + (c.cin == c.cout && c.stride == 1 ? [] : ["\(c.name).weight"]))
        }
    }
}

/// The 2x2 stride-2 max pool's own loop against the plain rule (first maximum in row-major
/// order wins; a NaN wins its row and is only replaced by a NaN in a later row), including
/// ties, NaNs and odd sizes, and its backward routing every gradient to the winner.
final class MaxPoolWindowTests: XCTestCase {
    func testTwoByTwoMatchesPlainRule() {
        let h = 5
        let w = 7
        var values: [Float] = (0..<(2 * h * w)).map { Float(($0 * 7) % 5) }  // many ties
        values[3] = .nan
        values[w + 8] = .nan
        values[2 * w + 2] = .nan
        values[3 * w + 2] = .nan
        let x = Tensor(shape: [1, 2, h, w], data: values)
        let pool = MaxPool2d(kernel: 2)
        let y = pool.forward(x, mode: .inference)
        XCTAssertEqual(y.shape, [1, 2, 2, 3])
        var expectedIndex: [Int] = []
        for c in 0..<2 {
            for oy in 0..<2 {
                for ox in 0..<3 {
                    var best = -Float.infinity
                    var index = -1
                    rows: for ky in 0..<2 {
                        for kx in 0..<2 {
                            let i = c * h * w + (2 * oy + ky) * w + 2 * ox + kx
                            let v = values[i]
                            if index < 0 || v > best || v.isNaN {
                                best = v
                                index = i
                                if v.isNaN { continue rows }
                            }
                        }
                    }
                    let got = y.array[(c * 2 + oy) * 3 + ox]
                    XCTAssertTrue(got == best || (got.isNaN && best.isNaN), "(\(c), \(oy), \(ox)): \(got) vs \(best)")
                    expectedIndex.append(index)
                }
            }
        }
        let dy = Tensor(shape: y.shape, data: (0..<y.count).map { Float($0 + 1) })
        let dx = pool.backward(dy, parameterGradients: false).array
        var expected = [Float](repeating: 0, count: values.count)
        for (o, i) in expectedIndex.enumerated() { expected[i] += Float(o + 1) }
        XCTAssertEqual(dx, expected)
    }
}
