import Attacks
import Checkpoint
import ModelIO
import Models
import NN
import TensorCore
import XCTest

/// Metadata parsing and loading checkpoints with and without rrmd metadata.
final class ModelLoaderTests: XCTestCase {
    func model(_ arch: String, width: Double = 0.5) throws -> Network {
        try ModelRegistry.make(
            arch,
            config: ModelConfig(
                channels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: width,
                mean: [0.3], std: [0.4]), seed: 5)
    }

    func testMetadataRoundTripAndValidation() throws {
        let net = try model("cnn-small")
        let m = ModelMetadata(
            model: net, dataset: "fashion-mnist", threatModel: "linf:8/255", trainedBy: "pgd-at", seed: 9)
        XCTAssertEqual(try ModelMetadata(m.dictionary), m)
        XCTAssertEqual(ThreatModel("linf:8/255")?.epsilon ?? 0, 8.0 / 255, accuracy: 1e-12)
        XCTAssertNil(ThreatModel("linf:-1"))
        XCTAssertEqual(ThreatModel("linf:8/255")?.text, "linf:8/255", "the radius keeps the way it was written")
        XCTAssertEqual(ThreatModel("l2:0.5")?.norm, .l2)
        XCTAssertEqual(ThreatModel("none"), ThreatModel.none)
        XCTAssertNil(ThreatModel("none")?.norm)
        XCTAssertNil(ThreatModel("linf"))
        XCTAssertNil(ThreatModel("l3:0.1"))
        var d = m.dictionary
        d["rrm.std"] = "0"
        XCTAssertThrowsError(try ModelMetadata(d)) { XCTAssertTrue("\($0)".contains("rrm.std"), "\($0)") }
        d = m.dictionary
        d["rrm.input_shape"] = "1,28"
        XCTAssertThrowsError(try ModelMetadata(d)) { XCTAssertTrue("\($0)".contains("C,H,W"), "\($0)") }
        d = m.dictionary
        d.removeValue(forKey: "rrm.arch")
        XCTAssertThrowsError(try ModelMetadata(d)) { XCTAssertEqual($0 as? ModelMetadataError, .missing("rrm.arch")) }
        d = m.dictionary
        d["rrm.arch"] = "alexnet"
        XCTAssertThrowsError(try ModelMetadata(d)) { XCTAssertTrue("\($0)".contains("resnet20"), "\($0)") }
    }

    func testLoadsWithMetadata() throws {
        let net = try model("resnet20")
        let archive = SafeTensors(
            net.stateTensors(),
            metadata: ModelMetadata(model: net, dataset: "fashion-mnist", trainedBy: "natural", seed: 5).dictionary)
        let loaded = try ModelLoader.load(archive: archive, source: "t", dataset: nil)
        XCTAssertFalse(loaded.inferred)
        XCTAssertEqual(loaded.network.config, net.config)
        var rng = RNG(seed: 2)
        let x = Tensor.uniform(shape: [3, 1, 28, 28], bound: 1, rng: &rng)
        XCTAssertEqual(loaded.network.forward(x, mode: .inference).array, net.forward(x, mode: .inference).array)
        XCTAssertThrowsError(try ModelLoader.load(archive: archive, source: "t", dataset: "cifar10")) {
            XCTAssertEqual(
                $0 as? ModelLoadError, .datasetMismatch(source: "t", inFile: "fashion-mnist", requested: "cifar10"))
        }
    }

    func testRecognisesPlainStateDicts() throws {
        for arch in ModelRegistry.names {
            let net = try model(arch, width: ["mlp", "cnn-small", "resnet20"].contains(arch) ? 1 : 0.25)
            let plain = SafeTensors(net.stateTensors())
            XCTAssertThrowsError(try ModelLoader.load(archive: plain, source: "p", dataset: nil)) {
                XCTAssertEqual($0 as? ModelLoadError, .datasetNeeded(source: "p"))
            }
            let loaded = try ModelLoader.load(archive: plain, source: "p", dataset: "fashion-mnist")
            XCTAssertTrue(loaded.inferred)
            XCTAssertEqual(loaded.metadata.architecture, arch)
            XCTAssertEqual(loaded.network.config.widthMultiplier, net.config.widthMultiplier)
        }
        // RobustBench's ResNet18 calls its classifier `linear`: mapped to rrmd's `fc`.
        let resnet18 = try model("resnet18", width: 0.25)
        let public18 = SafeTensors(
            resnet18.stateTensors().map { ($0.name.replacingOccurrences(of: "fc.", with: "linear."), $0.tensor) })
        XCTAssertTrue(public18.names.contains("linear.weight"))
        let mapped = try ModelLoader.load(archive: public18, source: "r", dataset: "fashion-mnist")
        XCTAssertEqual(mapped.metadata.architecture, "resnet18")
        let restored = Dictionary(uniqueKeysWithValues: mapped.network.stateTensors().map { ($0.name, $0.tensor) })
        for (name, tensor) in resnet18.stateTensors() {
            if case .float32(let expected) = tensor, case .float32(let got)? = restored[name] {
                XCTAssertEqual(got.array, expected.array, "\(name) loaded under its rrmd name")
            }
        }
        // A wide ResNet's depth and widen factor are read from the state dict itself.
        let wide = try model("wideresnet-16-4", width: 0.5)
        let loaded = try ModelLoader.load(
            archive: SafeTensors(wide.stateTensors()), source: "w", dataset: "fashion-mnist")
        XCTAssertEqual(loaded.metadata.architecture, "wideresnet-16-4")
        XCTAssertEqual(loaded.network.config.widthMultiplier, 0.5)
        // Tensors of no registry architecture: the error lists none and says which keys to add.
        var odd = SafeTensors(try model("resnet20").stateTensors())
        odd["layers.8.conv2.weight"] = .float32(Tensor(shape: [3, 3, 3, 3]))
        XCTAssertThrowsError(try ModelLoader.load(archive: odd, source: "o", dataset: "fashion-mnist")) { error in
            XCTAssertEqual(error as? ModelLoadError, .unidentified(source: "o", candidates: []))
            XCTAssertTrue("\(error)".contains("rrm.arch"))
        }
    }

    func testRefusesNonFiniteWeights() throws {
        let net = try model("mlp")
        var archive = SafeTensors(
            net.stateTensors(),
            metadata: ModelMetadata(model: net, dataset: "fashion-mnist", trainedBy: nil, seed: nil).dictionary)
        var w = try archive.float32("fc2.weight")
        w[flat: 3] = .nan
        archive["fc2.weight"] = .float32(w)
        XCTAssertThrowsError(try ModelLoader.load(archive: archive, source: "n", dataset: nil)) {
            XCTAssertEqual($0 as? ModelLoadError, .nonFinite(source: "n", tensors: ["fc2.weight"]))
        }
    }
}
