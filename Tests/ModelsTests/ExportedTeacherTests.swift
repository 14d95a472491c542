import Checkpoint
import Foundation
import ModelIO
import Models
import TensorCore
import TestSupport
import XCTest

/// Teachers exported from PyTorch by `Tools/pytorch/export_teacher.py` load through the same
/// path the daemon uses and give PyTorch's outputs: one zstd file with rrm.* metadata, one plain
/// state_dict recognised from its tensor names for a named dataset.
final class ExportedTeacherTests: XCTestCase {
    func path(_ name: String) throws -> String {
        try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent(name).path
    }

    func check(_ loaded: LoadedModel, sample: String) throws {
        let s = try SafeTensors(contentsOfFile: try path(sample))
        let (logits, rep) = loaded.network.forwardWithRepresentation(try s.float32("input"), mode: .inference)
        assertClose(logits, try s.float32("logits"), 1e-5, "\(sample) logits")
        assertClose(rep, try s.float32("representation"), 1e-5, "\(sample) representation")
    }

    func testCompressedTeacherWithMetadata() throws {
        let loaded = try ModelLoader.load(path: try path("exported-cnn-small.safetensors.zst"))
        XCTAssertFalse(loaded.inferred)
        XCTAssertEqual(loaded.metadata.architecture, "cnn-small")
        XCTAssertEqual(loaded.metadata.dataset, "fashion-mnist")
        XCTAssertEqual(loaded.metadata.threatModel, "linf:0.1")
        XCTAssertEqual(loaded.network.config.widthMultiplier, 0.3)
        try check(loaded, sample: "exported-cnn-small.sample.safetensors")
    }

    func testPlainStateDictIsRecognised() throws {
        XCTAssertThrowsError(try ModelLoader.load(path: try path("exported-resnet20-plain.safetensors"))) {
            XCTAssertTrue("\($0)".contains("rrm.dataset"), "\($0)")
        }
        let loaded = try ModelLoader.load(path: try path("exported-resnet20-plain.safetensors"), dataset: "cifar10")
        XCTAssertTrue(loaded.inferred)
        XCTAssertEqual(loaded.metadata.architecture, "resnet20")
        XCTAssertEqual(loaded.network.config.widthMultiplier, 0.5)
        try check(loaded, sample: "exported-resnet20-plain.sample.safetensors")
    }
}
