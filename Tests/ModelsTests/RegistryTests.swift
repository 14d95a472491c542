import Kernels
import Models
import NN
import TensorCore
import XCTest

/// Every architecture adapts to the input and class count and exposes its representation.
final class RegistryTests: XCTestCase {
    func testArchitecturesAdaptToInputs() throws {
        let widths = [
            "mlp": 256, "cnn-small": 128, "resnet20": 64, "resnet18": 512, "vgg11": 512, "mobilenetv2": 1280,
            "preactresnet18": 512, "resnet50": 2048, "wideresnet-28-10": 640,
        ]
        for name in ModelRegistry.names {
            for (c, h, w, k) in [(1, 28, 28, 10), (3, 32, 32, 7), (1, 8, 8, 3)] {
                let config = ModelConfig(channels: c, height: h, width: w, numClasses: k, widthMultiplier: 0.25)
                let model = try ModelRegistry.make(name, config: config, seed: 0)
                XCTAssertEqual(model.representationWidth, config.scaled(widths[name]!), name)
                var rng = RNG(seed: 1)
                let x = Tensor.uniform(shape: [2, c, h, w], bound: 1, rng: &rng)
                let (logits, rep) = model.forwardWithRepresentation(x, mode: .inference)
                XCTAssertEqual(logits.shape, [2, k], "\(name) \(c)x\(h)x\(w)")
                XCTAssertEqual(rep.shape, [2, model.representationWidth], name)
                XCTAssertTrue(logits.array.allSatisfy { $0.isFinite }, name)
            }
        }
    }

    func testWidthMultiplierAndErrors() throws {
        let base = ModelConfig(channels: 3, height: 32, width: 32, numClasses: 10)
        var wide = base
        wide.widthMultiplier = 4
        let small = try ModelRegistry.make("resnet20", config: base, seed: 0)
        let big = try ModelRegistry.make("resnet20", config: wide, seed: 0)
        XCTAssertEqual(small.representationWidth, 64)
        XCTAssertEqual(big.representationWidth, 256)
        XCTAssertEqual(small.parameterCount, 269_722, "parameter count of shared/peers/common.py resnet20()")
        XCTAssertThrowsError(try ModelRegistry.make("resnet99", config: base, seed: 0)) { error in
            XCTAssertTrue("\(error)".contains("known: mlp"), "\(error)")
        }
        XCTAssertThrowsError(
            try ModelRegistry.make(
                "cnn-small", config: ModelConfig(channels: 1, height: 3, width: 3, numClasses: 10), seed: 0))
    }

    /// The count made without building agrees with the built network, layer for layer, across
    /// architectures, input shapes, classes, widths (rounded channel counts) and heads.
    func testParameterCountWithoutBuilding() throws {
        for name in ModelRegistry.names {
            for (c, h, w, k) in [(1, 28, 28, 10), (3, 32, 32, 100), (1, 8, 8, 3)] {
                for width in [0.25, 0.6] {
                    for head in [nil, (48, false), (48, true)] as [(Int, Bool)?] {
                        var config = ModelConfig(
                            channels: c, height: h, width: w, numClasses: k, widthMultiplier: width)
                        config.projection = head?.0
                        config.projectionBias = head?.1 ?? false
                        let built = try ModelRegistry.make(name, config: config, seed: 0).parameterCount
                        XCTAssertEqual(
                            try ModelRegistry.parameterCount(name, config: config), built, "\(name) \(config)")
                    }
                }
            }
        }
        // Far beyond any machine: counted in microseconds, and refused by make with a reason.
        let huge = ModelConfig(channels: 3, height: 4096, width: 4096, numClasses: 1000, widthMultiplier: 64)
        XCTAssertGreaterThan(try ModelRegistry.parameterCount("resnet18", config: huge), 40_000_000_000)
        XCTAssertThrowsError(try ModelRegistry.make("resnet18", config: huge, seed: 0)) { error in
            guard case ModelError.notEnoughMemory(let short) = error else { return XCTFail("\(error)") }
            XCTAssertGreaterThan(short.needed, 160 << 30)
            XCTAssertTrue(
                "\(error)".contains("needs about") && "\(error)".contains("smaller width multiplier"), "\(error)")
        }
    }
}
