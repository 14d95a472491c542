import Checkpoint
import Foundation
import ModelIO
import Models
import NN
import TensorCore
import TestSupport
import XCTest

/// The student's projection head (design.md §1, "Width mismatch"): present exactly when
/// configured, named `projection.weight` like the PyTorch twin, carried by `rrm.projection`, and
/// matching PyTorch on whole students (fixtures from `Tools/pytorch/make_golden.py`).
final class ProjectionTests: XCTestCase {
    /// A small config every architecture accepts (8x8 keeps the convolutional ones fast).
    func config(projection: Int? = nil) -> ModelConfig {
        ModelConfig(
            channels: 1, height: 8, width: 8, numClasses: 10, widthMultiplier: 0.25, mean: [0.3], std: [0.4],
            projection: projection)
    }

    func testProjectionAppearsExactlyWhenConfigured() throws {
        let p = 7  // odd, and narrower or wider than the body depending on the architecture
        for arch in ModelRegistry.names {
            let plain = try ModelRegistry.make(arch, config: config(), seed: 3)
            let projected = try ModelRegistry.make(arch, config: config(projection: p), seed: 3)
            let d = try ModelRegistry.bodyWidth(arch, config: config())
            let k = 10
            XCTAssertNil(plain.projection, arch)
            XCTAssertEqual(plain.representationWidth, d, arch)
            XCTAssertEqual(plain.bodyWidth, d, arch)
            XCTAssertEqual(try ModelRegistry.representationWidth(arch, config: config()), d, arch)
            XCTAssertFalse(plain.stateTensors().contains { $0.name.contains("projection") }, arch)

            XCTAssertEqual(projected.representationWidth, p, arch)
            XCTAssertEqual(projected.bodyWidth, d, arch)
            XCTAssertEqual(try ModelRegistry.bodyWidth(arch, config: config(projection: p)), d, arch)
            XCTAssertEqual(try ModelRegistry.representationWidth(arch, config: config(projection: p)), p, arch)
            XCTAssertNil(projected.projection?.bias, "\(arch): the projection has no bias")

            // Same names plus `projection.weight`, placed between the body and the classifier
            // as in the twin's state_dict; only the classifier's input width changes.
            let names = projected.stateTensors().map(\.name)
            let head = plain.classifierName
            var expectedNames = plain.stateTensors().map(\.name)
            expectedNames.insert(
                "projection.weight", at: try XCTUnwrap(expectedNames.firstIndex(of: head + ".weight"), arch))
            XCTAssertEqual(names, expectedNames, arch)
            let shapes = Dictionary(uniqueKeysWithValues: projected.stateTensors().map { ($0.name, $0.tensor.shape) })
            let plainShapes = Dictionary(uniqueKeysWithValues: plain.stateTensors().map { ($0.name, $0.tensor.shape) })
            XCTAssertEqual(shapes["projection.weight"], [p, d], arch)
            XCTAssertEqual(shapes[head + ".weight"], [k, p], arch)
            XCTAssertEqual(shapes[head + ".bias"], [k], arch)
            for (name, shape) in plainShapes where name != head + ".weight" {
                XCTAssertEqual(shapes[name], shape, "\(arch) \(name)")
            }
            XCTAssertEqual(projected.parameterCount - plain.parameterCount, p * d + (p - d) * k, arch)
            XCTAssertEqual(projected.forwardFLOPsPerImage - plain.forwardFLOPsPerImage, 2 * (d * p + (p - d) * k), arch)

            // Forward gives the projected representation; backward from it alone reaches the input
            // and the projection's weight.
            var rng = RNG(seed: 4)
            let x = Tensor.uniform(shape: [2, 1, 8, 8], bound: 1, rng: &rng)  // [N, C, H, W]
            let (logits, rep) = projected.forwardWithRepresentation(x, mode: .training)
            XCTAssertEqual(logits.shape, [2, k], arch)
            XCTAssertEqual(rep.shape, [2, p], arch)
            XCTAssertEqual(projected.representation?.shape, [2, p], arch)
            projected.zeroGradients()
            let dRep = Tensor.uniform(shape: [2, p], bound: 1, rng: &rng)  // [N, P]
            let dx = projected.backward(logitsGradient: nil, representationGradient: dRep, parameterGradients: true)
            XCTAssertEqual(dx.shape, x.shape, arch)
            XCTAssertTrue(try XCTUnwrap(projected.projection).weight.grad.array.contains { $0 != 0 }, arch)
            XCTAssertTrue(
                projected.classifier.weight.grad.array.allSatisfy { $0 == 0 },
                "\(arch): a representation-only gradient must not reach the classifier")
        }
    }

    func testRepresentationIsTheProjectedBodyFeatures() throws {
        // Checks the composition directly: z = W_p * body(x), logits = classifier(z).
        let net = try ModelRegistry.make("mlp", config: config(projection: 5), seed: 1)
        var rng = RNG(seed: 2)
        let x = Tensor.uniform(shape: [3, 1, 8, 8], bound: 1, rng: &rng)
        let (_, z) = net.forwardWithRepresentation(x, mode: .inference)
        let features = net.body.forward(x, mode: .inference)  // [3, D]
        let w = try XCTUnwrap(net.projection).weight.value  // [5, D]
        let d = net.bodyWidth
        for i in 0..<3 {
            for j in 0..<5 {
                var s = 0.0
                for c in 0..<d { s += Double(features[flat: i * d + c]) * Double(w[flat: j * d + c]) }
                XCTAssertEqual(Double(z[flat: i * 5 + j]), s, accuracy: 1e-5 * max(1, abs(s)))
            }
        }
    }

    func testSeededModelsWithoutProjectionAreUnchanged() throws {
        // The head is drawn after the body, projection first: adding a projection leaves the
        // body's weights as they were for the same seed.
        for arch in ModelRegistry.names {
            let plain = try ModelRegistry.make(arch, config: config(), seed: 11)
            let projected = try ModelRegistry.make(arch, config: config(projection: 3), seed: 11)
            let head = plain.classifierName + "."
            let projectedState = Dictionary(uniqueKeysWithValues: projected.stateTensors().map { ($0.name, $0.tensor) })
            for (name, tensor) in plain.stateTensors() where !name.hasPrefix(head) {
                guard case .float32(let a) = tensor, case .float32(let b)? = projectedState[name] else { continue }
                XCTAssertEqual(a.array, b.array, "\(arch) \(name)")
            }
        }
    }

    func testInvalidProjectionWidthIsATypedError() throws {
        for p in [0, -3, ModelRegistry.maxProjectionWidth + 1] {
            XCTAssertThrowsError(try ModelRegistry.make("mlp", config: config(projection: p), seed: 0)) { error in
                guard case .invalidConfig(let why)? = error as? ModelError else { return XCTFail("\(p): \(error)") }
                XCTAssertTrue(why.contains("projection width \(p)"), why)
            }
        }
        XCTAssertThrowsError(try ModelRegistry.bodyWidth("lenet", config: config())) {
            XCTAssertEqual($0 as? ModelError, .unknownArchitecture("lenet"))
        }
        XCTAssertNoThrow(try ModelRegistry.make("mlp", config: config(projection: 1), seed: 0))
    }

    func testMetadataRoundTripWithProjection() throws {
        let net = try ModelRegistry.make("cnn-small", config: config(projection: 24), seed: 5)
        let m = ModelMetadata(
            model: net, dataset: "digits", trainedBy: "rrm", seed: 5,
            teacherSHA256: String(repeating: "ab", count: 32))
        XCTAssertEqual(m.dictionary["rrm.projection"], "24")
        let parsed = try ModelMetadata(m.dictionary)
        XCTAssertEqual(parsed, m)
        XCTAssertEqual(parsed.config.projection, 24)

        let plain = ModelMetadata(
            model: try ModelRegistry.make("cnn-small", config: config(), seed: 5), dataset: "digits",
            trainedBy: "natural", seed: 5)
        XCTAssertNil(plain.dictionary["rrm.projection"], "written only when set")
        XCTAssertNil(try ModelMetadata(plain.dictionary).config.projection)

        for bad in ["0", "-1", "+5", "x", "", "2.5", "65537"] {
            var d = m.dictionary
            d["rrm.projection"] = bad
            XCTAssertThrowsError(try ModelMetadata(d), "'\(bad)'") { error in
                guard case .invalid(let key, _, _)? = error as? ModelMetadataError else { return XCTFail("\(error)") }
                XCTAssertEqual(key, "rrm.projection")
                XCTAssertTrue("\(error)".contains("rrm.projection"), "\(error)")
            }
        }

        // Through a checkpoint: the loaded student has the head and the same outputs.
        let archive = SafeTensors(net.stateTensors(), metadata: m.dictionary)
        let loaded = try ModelLoader.load(archive: SafeTensors(bytes: archive.serialized()), source: "s", dataset: nil)
        XCTAssertEqual(loaded.network.config, net.config)
        XCTAssertEqual(loaded.network.projection?.weight.value.shape, [24, net.bodyWidth])
        var rng = RNG(seed: 6)
        let x = Tensor.uniform(shape: [2, 1, 8, 8], bound: 1, rng: &rng)
        let a = net.forwardWithRepresentation(x, mode: .inference)
        let b = loaded.network.forwardWithRepresentation(x, mode: .inference)
        XCTAssertEqual(a.logits.array, b.logits.array)
        XCTAssertEqual(a.representation.array, b.representation.array)
    }

    /// A projection with a bias (a study option; rrmd's students have none) is named
    /// `projection.bias`, recorded as `rrm.projection_bias`, loaded back with or without the
    /// metadata, and absent from the metadata of every model without one.
    func testProjectionBiasRoundTrips() throws {
        var c = config(projection: 24)
        c.projectionBias = true
        let net = try ModelRegistry.make("cnn-small", config: c, seed: 5)
        XCTAssertEqual(net.projection?.bias?.value.shape, [24])
        XCTAssertTrue(net.stateTensors().contains { $0.name == "projection.bias" })
        let m = ModelMetadata(model: net, dataset: "digits", trainedBy: "rrm", seed: 5)
        XCTAssertEqual(m.dictionary["rrm.projection_bias"], "true")
        XCTAssertEqual(try ModelMetadata(m.dictionary).config, c)
        XCTAssertNil(
            ModelMetadata(
                model: try ModelRegistry.make("cnn-small", config: config(projection: 24), seed: 5), dataset: "digits",
                trainedBy: "natural", seed: 5
            )
            .dictionary["rrm.projection_bias"], "written only when true")
        for bad in ["yes", "1", ""] {
            var d = m.dictionary
            d["rrm.projection_bias"] = bad
            XCTAssertThrowsError(try ModelMetadata(d), "'\(bad)'")
        }
        var orphan = ModelMetadata(
            model: try ModelRegistry.make("cnn-small", config: config(), seed: 5), dataset: "digits",
            trainedBy: "natural", seed: 5
        ).dictionary
        orphan["rrm.projection_bias"] = "true"
        XCTAssertThrowsError(try ModelMetadata(orphan), "a bias without a projection")

        var rng = RNG(seed: 6)
        let x = Tensor.uniform(shape: [2, 1, 8, 8], bound: 1, rng: &rng)
        for metadata in [m.dictionary, [:]] {
            let loaded = try ModelLoader.load(
                archive: SafeTensors(net.stateTensors(), metadata: metadata), source: "b",
                dataset: metadata.isEmpty ? "digits" : nil)
            XCTAssertTrue(loaded.network.config.projectionBias)
            // Without metadata the normalisation is unknown (identity), so only the full file
            // reproduces the outputs.
            if !metadata.isEmpty {
                XCTAssertEqual(
                    loaded.network.forward(x, mode: .inference).array, net.forward(x, mode: .inference).array)
            }
        }
    }

    func testMismatchedProjectionFailsWithANamedError() throws {
        let student = try ModelRegistry.make("resnet20", config: config(projection: 24), seed: 5)
        let bare = try ModelRegistry.make("resnet20", config: config(), seed: 5)
        let archive = SafeTensors(student.stateTensors())

        // Into a network without a projection: the extra tensor is named.
        XCTAssertThrowsError(try bare.loadState(from: archive)) { error in
            XCTAssertEqual(
                error as? ModelStateError,
                .keysDiffer(architecture: "resnet20", missing: [], unexpected: ["projection.weight"]))
            XCTAssertTrue("\(error)".contains("projection.weight"), "\(error)")
        }
        // A file whose metadata lost rrm.projection fails the same way through the loader.
        var m = ModelMetadata(model: student, dataset: "digits", trainedBy: "rrm", seed: nil).dictionary
        m["rrm.projection"] = nil
        XCTAssertThrowsError(
            try ModelLoader.load(archive: SafeTensors(student.stateTensors(), metadata: m), source: "s", dataset: nil)
        ) {
            XCTAssertTrue("\($0)".contains("unexpected 1 tensor(s): projection.weight"), "\($0)")
        }
        // The other way round: the projection is missing.
        XCTAssertThrowsError(try student.loadState(from: SafeTensors(bare.stateTensors()))) {
            XCTAssertEqual(
                $0 as? ModelStateError,
                .keysDiffer(architecture: "resnet20", missing: ["projection.weight"], unexpected: []))
        }
        // Another projection width: the shape error names the projection, which comes first.
        let other = try ModelRegistry.make("resnet20", config: config(projection: 12), seed: 5)
        XCTAssertThrowsError(try other.loadState(from: archive)) { error in
            XCTAssertEqual(
                error as? ModelStateError,
                .shapeMismatch(
                    name: "projection.weight", expected: [12, student.bodyWidth], found: [24, student.bodyWidth]))
        }
    }

    func testPlainStateDictWithProjectionIsRecognised() throws {
        for arch in ModelRegistry.names {
            let width = ["mlp", "cnn-small", "resnet20"].contains(arch) ? 1 : 0.25
            let net = try ModelRegistry.make(
                arch,
                config: ModelConfig(
                    channels: 1, height: 28, width: 28, numClasses: 10,
                    widthMultiplier: width, projection: 17), seed: 2)
            let loaded = try ModelLoader.load(
                archive: SafeTensors(net.stateTensors()), source: "p", dataset: "fashion-mnist")
            XCTAssertTrue(loaded.inferred, arch)
            XCTAssertEqual(loaded.metadata.architecture, arch)
            XCTAssertEqual(loaded.network.config.projection, 17, arch)
            XCTAssertEqual(loaded.metadata.dictionary["rrm.projection"], "17", arch)
        }
        // A projection weight that is not a matrix matches nothing.
        let net = try ModelRegistry.make(
            "mlp", config: ModelConfig(channels: 1, height: 28, width: 28, numClasses: 10, projection: 17), seed: 2)
        var odd = SafeTensors(net.stateTensors())
        odd["projection.weight"] = .float32(Tensor(shape: [17 * 256]))
        XCTAssertThrowsError(try ModelLoader.load(archive: odd, source: "o", dataset: "fashion-mnist")) {
            XCTAssertEqual($0 as? ModelLoadError, .unidentified(source: "o", candidates: []))
        }
    }

    // MARK: Whole students against PyTorch

    func testCNNSmallWithProjectionMatchesPyTorch() throws { try checkGolden("cnn-small-projection") }
    func testResNet20WithProjectionMatchesPyTorch() throws { try checkGolden("resnet20-projection") }

    /// Eval and train forwards (logits, projected representation, loss), input gradients in both
    /// modes and the state after each SGD step, as `GoldenModelTests` does for plain models, at
    /// its tolerance (max |Δ| / max |golden| ≤ 1e-4 per tensor).
    func checkGolden(_ name: String) throws {
        let f = try goldenFixture("\(name).safetensors")
        let m = f.metadata
        func int(_ k: String) throws -> Int { try XCTUnwrap(Int(m[k] ?? ""), "metadata \(k)") }
        func float(_ k: String) throws -> Float { try XCTUnwrap(Float(m[k] ?? ""), "metadata \(k)") }
        func floats(_ k: String) -> [Float] { (m[k] ?? "").split(separator: ",").compactMap { Float($0) } }
        let config = ModelConfig(
            channels: try int("in_channels"), height: try int("height"), width: try int("width"),
            numClasses: try int("num_classes"), widthMultiplier: Double(m["width_mult"] ?? "1") ?? 1,
            mean: floats("mean"), std: floats("std"), projection: try int("projection"))
        let model = try ModelRegistry.make(try XCTUnwrap(m["arch"]), config: config, seed: 0)
        try model.loadState(from: f, prefix: "state.")
        let x = try f.float32("input")  // [N, C, H, W]
        let labels = try f.int64("labels").values.map { Int32($0) }
        let tol: Float = 1e-4
        var worst = MaxAbsDiff()
        func check(_ actual: Tensor, _ key: String) throws {
            let expected = try f.float32(key)
            assertClose(actual, expected.count == 1 ? expected.reshaped(actual.shape) : expected, tol, "\(name) \(key)")
            worst.add(actual, expected, key)
        }

        let (logits, rep) = model.forwardWithRepresentation(x, mode: .inference)
        XCTAssertEqual(rep.shape, [x.dim(0), config.projection!])
        try check(logits, "eval.logits")
        try check(rep, "eval.representation")
        let evalLoss = softmaxCrossEntropy(logits: logits, labels: labels)
        try check(scalar(evalLoss.value), "eval.loss")
        model.zeroGradients()
        try check(model.backward(evalLoss.gradient, parameterGradients: false), "eval.input_grad")

        let sgd = SGD(
            parameters: model.namedParameters(),
            settings: .init(momentum: try float("momentum"), weightDecay: try float("weight_decay")))
        for step in 1...(try int("steps")) {
            let tag = step == 1 ? "train" : "train\(step)"
            sgd.zeroGradients()
            let (tl, tr) = model.forwardWithRepresentation(x, mode: .training)
            try check(tl, "\(tag).logits")
            if step == 1 { try check(tr, "train.representation") }
            let loss = softmaxCrossEntropy(logits: tl, labels: labels)
            try check(scalar(loss.value), "\(tag).loss")
            let dx = model.backward(loss.gradient, parameterGradients: true)
            if step == 1 { try check(dx, "train.input_grad") }
            sgd.step(lr: try float("lr"))
            for (key, stored) in model.stateTensors() {
                switch stored {
                case .float32(let t): try check(t, "step\(step).\(key)")
                case .int64(_, let values):
                    XCTAssertEqual(values, try f.int64("step\(step).\(key)").values, "\(name) step\(step).\(key)")
                case .raw: XCTFail("\(key): unexpected dtype")
                }
            }
        }
        worst.report(name)
    }
}
