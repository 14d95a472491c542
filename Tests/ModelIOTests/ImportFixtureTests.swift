import Checkpoint
import Foundation
import ModelIO
import Models
import NN
import TensorCore
import TestSupport
import XCTest

/// Teachers imported from PyTorch by Tools/pytorch/import_checkpoint.py: models built from
/// RobustBench's own definitions (a WideResNet in a normalising wrapper, a PreActResNet18 under
/// DataParallel's prefix), saved as their releases are, imported, and compared here with the
/// logits RobustBench's modules gave (fixtures from Tools/pytorch/make_import_fixtures.py).
final class ImportFixtureTests: XCTestCase {
    static let directory = TestFixtures.checkout.appendingPathComponent("Tests/ModelIOTests/Fixtures")

    func check(_ name: String, arch: String, mean: [Float]) throws {
        let reference = try SafeTensors(
            contentsOfFile: Self.directory.appendingPathComponent("import-reference.safetensors").path)
        let teacher = try ModelLoader.load(
            path: Self.directory.appendingPathComponent("\(name).safetensors.zst").path)
        XCTAssertFalse(teacher.inferred, "the importer writes complete rrm.* metadata")
        XCTAssertEqual(teacher.metadata.architecture, arch)
        XCTAssertEqual(teacher.metadata.dataset, "cifar10")
        XCTAssertEqual(teacher.metadata.threatModel, "linf:8/255")
        XCTAssertEqual(teacher.metadata.trainedBy, "external")
        XCTAssertEqual(teacher.network.config.mean, mean, "the normalisation went into the metadata")
        let expected = try reference.float32("\(name).logits")
        let logits = teacher.network.forward(try reference.float32("input"), mode: .inference)
        XCTAssertEqual(logits.shape, expected.shape)
        let scale = max(1, expected.array.map(abs).max() ?? 1)
        let diff = zip(logits.array, expected.array).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(diff, 1e-4 * scale, "\(name): max |Δ logits| \(diff) at logit scale \(scale)")
        XCTAssertEqual(
            logits.argmaxRows(), expected.argmaxRows(), "\(name): the same predicted class for every image")
    }

    /// `mu`/`sigma` buffers and the `model.` prefix were found and handled by the importer.
    func testWideResNetInANormalisingWrapper() throws {
        try check("import-wrn-16-2", arch: "wideresnet-16-2", mean: [0.4914, 0.4822, 0.4465])
    }

    /// A normalising first layer (`nn.Sequential(Normalize, model)`): its `0.mean`/`0.std` became
    /// the metadata's normalisation and the model's `1.` prefix was stripped.
    func testWideResNetBehindANormalisingFirstLayer() throws {
        try check("import-wrn-16-1-sequential", arch: "wideresnet-16-1", mean: [0.5, 0.4, 0.3])
    }

    /// DataParallel's `module.` stripped; the normalisation given on the command line.
    func testPreActResNet18UnderDataParallel() throws {
        try check("import-preactresnet18", arch: "preactresnet18", mean: [0.4914, 0.4822, 0.4465])
    }
}

extension Tensor {
    /// The index of the largest value of each row of a [N, K] tensor.
    fileprivate func argmaxRows() -> [Int] {
        let k = shape[1]
        let a = array
        return (0..<shape[0]).map { i in (0..<k).max { a[i * k + $0] < a[i * k + $1] }! }
    }
}
