import NN
import TensorCore
import XCTest

/// `ConvBNReLU` runs conv → BatchNorm (→ ReLU) fused, in both modes, with the ReLU's backward
/// inside BatchNorm's. It must give the same bits as running the layers one by one (outputs,
/// gradients, running statistics) and name its state as they are named. (Each layer's own
/// gradients, the fused ones included, are checked against finite differences in
/// LayerGradientTests.)
final class FusedLayersTests: XCTestCase {
    /// conv-bn-relu, conv(bias)-bn, and a conv-bn at the end; BatchNorm states far from identity.
    func makeStack(_ rng: inout RNG) -> [(String, Layer)] {
        let layers: [(String, Layer)] = [
            ("conv1", Conv2d(3, 5, kernel: 3, padding: 1, bias: false, rng: &rng)), ("bn1", BatchNorm2d(5)),
            ("relu1", ReLU()),
            ("conv2", Conv2d(5, 4, kernel: 3, stride: 2, padding: 1, bias: true, rng: &rng)), ("bn2", BatchNorm2d(4)),
            ("pool", AvgPool2d(kernel: 1)),
            ("conv3", Conv2d(4, 6, kernel: 1, bias: false, rng: &rng)), ("bn3", BatchNorm2d(6)),
        ]
        for case let bn as BatchNorm2d in layers.map({ $0.1 }) {
            let c = bn.channels
            bn.weight.value = Tensor.uniform(shape: [c], bound: 1.5, rng: &rng)
            bn.bias.value = Tensor.normal(shape: [c], std: 0.5, rng: &rng)
            bn.runningMean.value = Tensor.normal(shape: [c], std: 0.3, rng: &rng)
            bn.runningVar.value = Tensor(shape: [c], data: (0..<c).map { 0.5 + Float($0) * 0.3 })
        }
        return layers
    }

    func testFusedMatchesLayerByLayerInBothModes() {
        for mode in [Mode.training, .inference] {
            // Two identical stacks: layer by layer changes BatchNorm's running statistics too.
            var rng = RNG(seed: 31)
            let plain = makeStack(&rng)
            rng = RNG(seed: 31)
            let stack = makeStack(&rng)
            let fused = Sequential(ConvBNReLU.fusing(stack))
            XCTAssertEqual(fused.children.map { $0.layer is ConvBNReLU }, [true, true, false, true])
            let x = Tensor.normal(shape: [4, 3, 7, 6], std: 1, rng: &rng)
            let r = Tensor.normal(shape: fused.outputShape(for: x.shape), std: 1, rng: &rng)

            // Layer by layer: each child's own forward and backward.
            var h = x
            for (_, layer) in plain { h = layer.forward(h, mode: mode) }
            var g = r
            for (_, layer) in plain.reversed() { g = layer.backward(g, parameterGradients: true) }
            let plainSequential = Sequential(plain)

            // The same through the fused layers.
            let y = fused.forward(x, mode: mode)
            XCTAssertEqual(y.array, h.array, "\(mode): fused forward changes bits")
            let dx = fused.backward(r, parameterGradients: true)
            XCTAssertEqual(dx.array, g.array, "\(mode): input gradient")
            var expected: [(String, [Float])] = []
            var got: [(String, [Float])] = []
            plainSequential.visitState(prefix: "") { name, entry in expected.append((name, Self.values(entry))) }
            fused.visitState(prefix: "") { name, entry in got.append((name, Self.values(entry))) }
            XCTAssertEqual(got.map(\.0), expected.map(\.0), "state names, in order")
            for ((name, a), (_, b)) in zip(got, expected) { XCTAssertEqual(a, b, "\(mode): \(name)") }
            for ((name, p), (_, q)) in zip(fused.namedParameters(), plainSequential.namedParameters()) {
                XCTAssertEqual(p.grad.array, q.grad.array, "\(mode): \(name).grad")
            }
            if mode == .inference {
                // An attack's backward: input gradient only. The fused forward kept no
                // convolution output for BatchNorm, and this backward must not need it.
                _ = fused.forward(x, mode: mode)
                XCTAssertEqual(
                    fused.backward(r, parameterGradients: false).array, g.array, "inference: input gradient only")
            }
        }
    }

    /// Values of a state entry (parameters, running statistics, counters) for comparison.
    static func values(_ entry: StateEntry) -> [Float] {
        switch entry {
        case .parameter(let p): return p.value.array
        case .buffer(let b): return b.value.array
        case .counter(let c): return [Float(c.value)]
        }
    }
}

/// `ResidualBlock` puts its sum and ReLU into the last conv -> BatchNorm's last pass (the
/// convolution's epilogue in inference, BatchNorm's normalisation in training); outputs,
/// gradients and running statistics must be the bits of running every layer on its own, for
/// every shortcut the registry builds and with or without the ReLU after the sum.
final class FusedResidualTests: XCTestCase {
    enum Shortcut: CaseIterable { case identity, channelPad, projection }

    /// The block's layers one by one (`layers`: conv1, bn1, relu, conv2, bn2; `shortcut`: none,
    /// a channel pad, or conv + BN), and the same layers as a `ResidualBlock`.
    func makeBlock(
        _ rng: inout RNG, _ kind: Shortcut, reluAfterSum: Bool
    ) -> (ResidualBlock, layers: [Layer], shortcut: [Layer]) {
        let (cin, cout, s) = kind == .identity ? (6, 6, 1) : (4, 8, 2)
        let layers: [Layer] = [
            Conv2d(cin, cout, kernel: 3, stride: s, padding: 1, bias: false, rng: &rng), BatchNorm2d(cout), ReLU(),
            Conv2d(cout, cout, kernel: 3, padding: 1, bias: false, rng: &rng), BatchNorm2d(cout),
        ]
        var shortcut: [Layer] = []
        switch kind {
        case .identity: break
        case .channelPad: shortcut = [ChannelPadShortcut(inChannels: cin, outChannels: cout, stride: 2)]
        case .projection:
            shortcut = [Conv2d(cin, cout, kernel: 1, stride: 2, bias: false, rng: &rng), BatchNorm2d(cout)]
        }
        for case let bn as BatchNorm2d in layers + shortcut {
            bn.weight.value = Tensor.uniform(shape: [cout], bound: 1.5, rng: &rng)
            bn.bias.value = Tensor.normal(shape: [cout], std: 0.5, rng: &rng)
            bn.runningMean.value = Tensor.normal(shape: [cout], std: 0.3, rng: &rng)
            bn.runningVar.value = Tensor(shape: [cout], data: (0..<cout).map { 0.5 + Float($0) * 0.2 })
        }
        let fusedShortcut: Layer? =
            switch kind {
            case .identity: nil
            case .channelPad: shortcut[0]
            case .projection:
                ConvBNReLU(shortcut[0] as! Conv2d, shortcut[1] as! BatchNorm2d, relu: false, names: ("0", "1"))
            }
        let head = ConvBNReLU(layers[0] as! Conv2d, layers[1] as! BatchNorm2d, relu: true, names: ("conv1", "bn1"))
        let block = ResidualBlock(
            main: Sequential([("", head)]), conv: layers[3] as! Conv2d, bn: layers[4] as! BatchNorm2d,
            tailNames: ("conv2", "bn2"), shortcut: fusedShortcut, reluAfterSum: reluAfterSum)
        return (block, layers, shortcut)
    }

    func testBlockMatchesLayerByLayerInBothModes() {
        let cases = [Mode.inference, .training].flatMap { mode in
            Shortcut.allCases.flatMap { kind in [true, false].map { (mode, kind, $0) } }
        }
        for (mode, kind, reluAfterSum) in cases {
            var rng = RNG(seed: 41)
            let (block, layers, shortcut) = makeBlock(&rng, kind, reluAfterSum: reluAfterSum)
            let x = Tensor.normal(shape: [3, kind == .identity ? 6 : 4, 8, 6], std: 1, rng: &rng)
            let r = Tensor.normal(shape: block.outputShape(for: x.shape), std: 1, rng: &rng)

            // Layer by layer, every layer on its own.
            var h = x
            for layer in layers { h = layer.forward(h, mode: mode) }
            let skip = shortcut.reduce(x) { $1.forward($0, mode: mode) }
            let sum = zip(h.array, skip.array).map { reluAfterSum ? Swift.max($0 + $1, 0) : $0 + $1 }
            let dSum = reluAfterSum ? Tensor(shape: r.shape, data: zip(sum, r.array).map { $0 > 0 ? $1 : 0 }) : r
            var g = dSum
            for layer in layers.reversed() { g = layer.backward(g, parameterGradients: true) }
            let dSkip = shortcut.reversed().reduce(dSum) { $1.backward($0, parameterGradients: true) }
            let dx = zip(g.array, dSkip.array).map { $0 + $1 }
            let plainGrads = Self.gradients(layers + shortcut)

            // Fused, on a fresh copy of the block.
            rng = RNG(seed: 41)
            let (fused, fusedLayers, fusedShortcut) = makeBlock(&rng, kind, reluAfterSum: reluAfterSum)
            let what = "\(mode), \(kind), ReLU after the sum \(reluAfterSum)"
            XCTAssertEqual(fused.forward(x, mode: mode).array, sum, "\(what): output")
            XCTAssertEqual(fused.backward(r, parameterGradients: true).array, dx, "\(what): input gradient")
            XCTAssertEqual(Self.gradients(fusedLayers + fusedShortcut), plainGrads, "\(what): parameter gradients")
            if mode == .inference {
                // An attack's backward: BatchNorm and ReLU folded into each convolution's input gradient.
                _ = fused.forward(x, mode: mode)
                XCTAssertEqual(fused.backward(r, parameterGradients: false).array, dx, "\(what): input gradient only")
            }
            for (a, b) in zip(fusedLayers + fusedShortcut, layers + shortcut) {
                if let a = a as? BatchNorm2d, let b = b as? BatchNorm2d {
                    XCTAssertEqual(a.runningMean.value.array, b.runningMean.value.array, "\(what): running mean")
                    XCTAssertEqual(a.runningVar.value.array, b.runningVar.value.array, "\(what): running variance")
                }
            }
        }
    }

    /// Every parameter gradient of `layers`, in order.
    static func gradients(_ layers: [Layer]) -> [[Float]] {
        layers.flatMap { layer -> [[Float]] in
            var grads: [[Float]] = []
            layer.visitState(prefix: "") { _, entry in if case .parameter(let p) = entry { grads.append(p.grad.array) }
            }
            return grads
        }
    }
}
