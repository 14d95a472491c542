import NN
import TensorCore
import XCTest

/// `Sequential` runs conv → BatchNorm (→ ReLU) fused, in both modes, and BatchNorm → ReLU
/// fused in backward. It must give the same bits as running the layers one by one (outputs,
/// gradients, running statistics), and leave every layer ready for `backward` exactly as its
/// own forward would. (Each layer's own gradients are checked against finite
/// differences in LayerGradientTests, and a residual block through the fused path there too.)
final class FusedLayersTests: XCTestCase {
    /// conv-bn-relu, conv(bias)-bn, and a conv-bn at the end; BatchNorm states far from identity.
    func makeStack(_ rng: inout RNG) -> [(String, Layer)] {
        let layers: [(String, Layer)] = [
            ("conv1", Conv2d(3, 5, kernel: 3, padding: 1, bias: false, rng: &rng)), ("bn1", BatchNorm2d(5)), ("relu1", ReLU()),
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
            let fused = Sequential(stack)
            let x = Tensor.normal(shape: [4, 3, 7, 6], std: 1, rng: &rng)
            let r = Tensor.normal(shape: fused.outputShape(for: x.shape), std: 1, rng: &rng)

            // Layer by layer: each child's own forward and backward.
            var h = x
            for (_, layer) in plain { h = layer.forward(h, mode: mode) }
            var g = r
            for (_, layer) in plain.reversed() { g = layer.backward(g, parameterGradients: true) }
            let plainSequential = Sequential(plain)

            // The same through Sequential's fused paths.
            let y = fused.forward(x, mode: mode)
            XCTAssertEqual(y.array, h.array, "\(mode): fused forward changes bits")
            let dx = fused.backward(r, parameterGradients: true)
            XCTAssertEqual(dx.array, g.array, "\(mode): input gradient")
            var expected: [String: [Float]] = [:]
            plainSequential.visitState(prefix: "") { name, entry in expected[name] = Self.values(entry) }
            fused.visitState(prefix: "") { name, entry in
                XCTAssertEqual(Self.values(entry), expected[name], "\(mode): \(name)")
            }
            for ((name, p), (_, q)) in zip(fused.namedParameters(), plainSequential.namedParameters()) {
                XCTAssertEqual(p.grad.array, q.grad.array, "\(mode): \(name).grad")
            }
            if mode == .inference {
                // An attack's backward: input gradient only. The fused forward kept no
                // convolution output for BatchNorm, and this backward must not need it.
                _ = fused.forward(x, mode: mode)
                XCTAssertEqual(fused.backward(r, parameterGradients: false).array, g.array, "inference: input gradient only")
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

/// A residual block puts its sum and ReLU into the last conv -> BatchNorm's last pass (the
/// convolution's epilogue in inference, BatchNorm's normalisation in training); outputs,
/// gradients and running statistics must be the bits of running every layer on its own.
final class FusedResidualTests: XCTestCase {
    func makeBlock(_ rng: inout RNG, downsample: Bool) -> (Residual, [Layer], Layer?) {
        let (cin, cout, s) = downsample ? (4, 8, 2) : (6, 6, 1)
        let layers: [Layer] = [
            Conv2d(cin, cout, kernel: 3, stride: s, padding: 1, bias: false, rng: &rng), BatchNorm2d(cout), ReLU(),
            Conv2d(cout, cout, kernel: 3, padding: 1, bias: false, rng: &rng), BatchNorm2d(cout),
        ]
        for case let bn as BatchNorm2d in layers {
            bn.weight.value = Tensor.uniform(shape: [cout], bound: 1.5, rng: &rng)
            bn.bias.value = Tensor.normal(shape: [cout], std: 0.5, rng: &rng)
            bn.runningMean.value = Tensor.normal(shape: [cout], std: 0.3, rng: &rng)
            bn.runningVar.value = Tensor(shape: [cout], data: (0..<cout).map { 0.5 + Float($0) * 0.2 })
        }
        let shortcut: Layer? = downsample ? ChannelPadShortcut(inChannels: cin, outChannels: cout, stride: 2) : nil
        let main = Sequential(zip(["conv1", "bn1", "relu", "conv2", "bn2"], layers).map { ($0, $1) })
        return (Residual(main: main, shortcut: shortcut, reluAfterSum: true), layers, shortcut)
    }

    func testBlockMatchesLayerByLayerInBothModes() {
        for mode in [Mode.inference, .training] {
          for downsample in [false, true] {
            var rng = RNG(seed: 41)
            let (block, layers, shortcut) = makeBlock(&rng, downsample: downsample)
            let x = Tensor.normal(shape: [3, downsample ? 4 : 6, 8, 6], std: 1, rng: &rng)
            let r = Tensor.normal(shape: block.outputShape(for: x.shape), std: 1, rng: &rng)

            // Layer by layer, every layer on its own.
            var h = x
            for layer in layers { h = layer.forward(h, mode: mode) }
            let skip = shortcut?.forward(x, mode: mode) ?? x
            let sum = zip(h.array, skip.array).map { Swift.max($0 + $1, 0) }
            let dSum = Tensor(shape: r.shape, data: zip(sum, r.array).map { $0 > 0 ? $1 : 0 })
            var g = dSum
            for layer in layers.reversed() { g = layer.backward(g, parameterGradients: true) }
            let dSkip = shortcut?.backward(dSum, parameterGradients: true) ?? dSum
            let dx = zip(g.array, dSkip.array).map { $0 + $1 }
            let plainGrads = layers.flatMap { layer -> [[Float]] in
                var grads: [[Float]] = []
                layer.visitState(prefix: "") { _, entry in if case .parameter(let p) = entry { grads.append(p.grad.array) } }
                return grads
            }

            // Fused, on a fresh copy of the block.
            rng = RNG(seed: 41)
            let (fused, fusedLayers, _) = makeBlock(&rng, downsample: downsample)
            let what = "\(mode), downsample \(downsample)"
            XCTAssertEqual(fused.forward(x, mode: mode).array, sum, "\(what): output")
            XCTAssertEqual(fused.backward(r, parameterGradients: true).array, dx, "\(what): input gradient")
            let fusedGrads = fusedLayers.flatMap { layer -> [[Float]] in
                var grads: [[Float]] = []
                layer.visitState(prefix: "") { _, entry in if case .parameter(let p) = entry { grads.append(p.grad.array) } }
                return grads
            }
            XCTAssertEqual(fusedGrads, plainGrads, "\(what): parameter gradients")
            if mode == .inference {
                // An attack's backward: BatchNorm and ReLU folded into each convolution's input gradient.
                _ = fused.forward(x, mode: mode)
                XCTAssertEqual(fused.backward(r, parameterGradients: false).array, dx, "\(what): input gradient only")
            }
            for (a, b) in zip(fusedLayers, layers) {
                if let a = a as? BatchNorm2d, let b = b as? BatchNorm2d {
                    XCTAssertEqual(a.runningMean.value.array, b.runningMean.value.array, "\(what): running mean")
                    XCTAssertEqual(a.runningVar.value.array, b.runningVar.value.array, "\(what): running variance")
                }
            }
          }
        }
    }
}
