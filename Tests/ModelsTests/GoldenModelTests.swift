import Checkpoint
import Models
import NN
import TensorCore
import TestSupport
import XCTest

/// Whole models against PyTorch: forward in both modes, dL/dx, and one or two SGD steps
/// (fixtures from `Tools/pytorch/make_golden.py`, computed in float64).
final class GoldenModelTests: XCTestCase {
    func testResNet20() throws { try check("resnet20") }
    /// Fashion-MNIST-sized (1 x 28 x 28, width 0.5): stages 28, 14 and 7 wide, on Winograd grids
    /// with ghost tiles.
    func testResNet20At28() throws { try check("resnet20-28") }
    func testVGG11() throws { try check("vgg11") }
    func testCNNSmall() throws { try check("cnn-small") }
    func testMLP() throws { try check("mlp") }
    func testResNet18() throws { try check("resnet18") }
    func testPreActResNet18() throws { try check("preactresnet18") }
    /// ResNet-50 (53 BatchNorms, batch 2) is as chaotic in train mode as MobileNetV2 (README).
    func testResNet50() throws { try check("resnet50", chaotic: true) }
    func testWideResNet28x10() throws { try check("wideresnet-28-10") }
    func testWideResNet16x2() throws { try check("wideresnet-16-2") }
    /// Train-mode MobileNetV2 amplifies float32 rounding ~100x through its 52 BatchNorms (see
    /// the fixtures' README), so its training checks use the README's looser measures.
    func testMobileNetV2() throws { try check("mobilenetv2", chaotic: true) }

    func check(_ name: String, chaotic: Bool = false) throws {
        let f = try goldenFixture("\(name).safetensors")
        let m = f.metadata
        func int(_ k: String) throws -> Int { try XCTUnwrap(Int(m[k] ?? ""), "metadata \(k)") }
        func float(_ k: String) throws -> Float { try XCTUnwrap(Float(m[k] ?? ""), "metadata \(k)") }
        func floats(_ k: String) -> [Float] { (m[k] ?? "").split(separator: ",").compactMap { Float($0) } }
        let config = ModelConfig(
            channels: try int("in_channels"), height: try int("height"), width: try int("width"),
            numClasses: try int("num_classes"), widthMultiplier: Double(m["width_mult"] ?? "1") ?? 1,
            mean: floats("mean"), std: floats("std"))
        let model = try ModelRegistry.make(try XCTUnwrap(m["arch"]), config: config, seed: 0)
        try model.loadState(from: f, prefix: "state.")
        let x = try f.float32("input")
        let labels = try f.int64("labels").values.map { Int32($0) }
        let tol: Float = 1e-4

        // Inference mode.
        let (logits, rep) = model.forwardWithRepresentation(x, mode: .inference)
        assertClose(logits, try f.float32("eval.logits"), tol, "\(name) eval.logits")
        assertClose(rep, try f.float32("eval.representation"), tol, "\(name) eval.representation")
        let evalLoss = softmaxCrossEntropy(logits: logits, labels: labels)
        assertClose(scalar(evalLoss.value), try f.float32("eval.loss").reshaped([1]), tol, "\(name) eval.loss")
        model.zeroGradients()
        let dxEval = model.backward(evalLoss.gradient, parameterGradients: false)
        assertClose(dxEval, try f.float32("eval.input_grad"), tol, "\(name) eval.input_grad")
        XCTAssertTrue(
            model.namedParameters().allSatisfy { $0.1.grad.array.allSatisfy { $0 == 0 } },
            "\(name): input-only backward touched parameter gradients")

        // Training mode, then SGD steps.
        let sgd = SGD(
            parameters: model.namedParameters(),
            settings: .init(momentum: try float("momentum"), weightDecay: try float("weight_decay")))
        let lr = try float("lr")
        let trainTol: Float = chaotic ? 1e-3 : tol
        let steps = try int("steps")
        for step in 1...steps {
            let tag = step == 1 ? "train" : "train\(step)"
            sgd.zeroGradients()
            let (tl, tr) = model.forwardWithRepresentation(x, mode: .training)
            assertClose(tl, try f.float32("\(tag).logits"), trainTol, "\(name) \(tag).logits")
            if step == 1 {
                assertClose(tr, try f.float32("train.representation"), trainTol, "\(name) train.representation")
            }
            let loss = softmaxCrossEntropy(logits: tl, labels: labels)
            assertClose(scalar(loss.value), try f.float32("\(tag).loss").reshaped([1]), trainTol, "\(name) \(tag).loss")
            let dx = model.backward(loss.gradient, parameterGradients: true)
            if step == 1 && !chaotic {
                assertClose(dx, try f.float32("train.input_grad"), tol, "\(name) train.input_grad")
            }
            sgd.step(lr: lr)
            try compareState(
                model, f, prefix: "step\(step).", before: step == 1 ? "state." : nil, chaotic: chaotic, name: name)
        }
    }

    /// Compares the whole state after a step with the fixture's `prefix` state dict.
    func compareState(
        _ model: Network, _ f: SafeTensors, prefix: String, before: String?, chaotic: Bool, name: String
    ) throws {
        var updateDiff = 0.0
        var updateNorm = 0.0
        for (key, stored) in model.stateTensors() {
            switch stored {
            case .int64(_, let values):
                XCTAssertEqual(values, try f.int64(prefix + key).values, "\(name) \(prefix)\(key)")
            case .float32(let t):
                let expected = try f.float32(prefix + key)
                let isStatistic = key.hasSuffix("running_mean") || key.hasSuffix("running_var")
                if chaotic && !isStatistic, let before {
                    // Whole-update relative L2 error, as the README prescribes for this case.
                    let start = try f.float32(before + key).array
                    let a = t.array
                    let e = expected.array
                    for i in 0..<a.count {
                        updateDiff += Double(a[i] - e[i]) * Double(a[i] - e[i])
                        updateNorm += Double(e[i] - start[i]) * Double(e[i] - start[i])
                    }
                } else {
                    assertClose(t, expected, chaotic ? 1e-3 : 1e-4, "\(name) \(prefix)\(key)")
                }
            case .raw:
                XCTFail("\(key): unexpected dtype")
            }
        }
        if chaotic && before != nil {
            let rel = (updateDiff / max(updateNorm, 1e-30)).squareRoot()
            XCTAssertLessThanOrEqual(rel, 5e-2, "\(name) \(prefix) whole-update relative L2 error")
        }
    }
}
