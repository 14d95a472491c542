import Checkpoint
import TensorCore
import XCTest

final class RoundTripTests: XCTestCase {
    /// An archive touching every shape kind: matrices, a scalar, an empty tensor, I64 values at
    /// both extremes, a raw dtype, and names/metadata that need escaping.
    func sampleArchive() -> SafeTensors {
        var archive = SafeTensors(metadata: [
            "rrm.arch": "resnet20", "rrm.seed": "42", "quote\"back\\slash": "tab\tnew\nline\u{1}", "ünï": "çødé ✓",
        ])
        archive["conv1.weight"] = .float32(Tensor(shape: [2, 1, 3, 3], data: (0..<18).map { Float($0) * 0.5 - 3 }))
        archive["bn1.running_var"] = .float32(Tensor(shape: [2], data: [1, .greatestFiniteMagnitude]))
        archive["bn1.num_batches_tracked"] = .int64(shape: [], values: [123_456])
        archive["scalar"] = .float32(Tensor(shape: [], data: [-0.0]))
        archive["empty"] = .float32(Tensor(shape: [0, 4]))
        archive["ids"] = .int64(shape: [3], values: [.min, -1, .max])
        archive["half"] = .raw(dtype: .f16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0xC0])
        archive["nän\"ë"] = .float32(Tensor(shape: [1, 1], data: [.infinity]))
        return archive
    }

    func testRoundTripPreservesEverything() throws {
        let original = sampleArchive()
        let bytes = original.serialized()
        let read = try SafeTensors(bytes: bytes)
        XCTAssertEqual(read.metadata, original.metadata)
        XCTAssertEqual(Set(read.names), Set(original.names))
        for name in original.names {
            let a = original[name]!
            let b = read[name]!
            XCTAssertEqual(a.dtype, b.dtype, name)
            XCTAssertEqual(a.shape, b.shape, name)
            XCTAssertEqual(a.byteCount, b.byteCount, name)
            switch (a, b) {
            case (.float32(let x), .float32(let y)):
                XCTAssertEqual(x.array.map(\.bitPattern), y.array.map(\.bitPattern), name)
            case (.int64(_, let x), .int64(_, let y)):
                XCTAssertEqual(x, y, name)
            case (.raw(_, _, let x), .raw(_, _, let y)):
                XCTAssertEqual(x, y, name)
            default:
                XCTFail("\(name): stored kind changed")
            }
        }
        XCTAssertEqual(try read.float32("scalar").shape, [])
        XCTAssertEqual(try read.float32("empty").shape, [0, 4])
        XCTAssertEqual(read.serialized(), bytes, "writing what was read must reproduce the bytes")
    }

    func testOutputDoesNotDependOnInsertionOrder() {
        let forward = sampleArchive()
        var backward = SafeTensors(metadata: forward.metadata)
        for name in forward.names.reversed() { backward[name] = forward[name] }
        XCTAssertEqual(forward.serialized(), backward.serialized())
    }

    func testLayoutIsWidestDTypeFirstThenName() throws {
        var archive = SafeTensors()
        archive["b"] = .float32(Tensor(shape: [1]))
        archive["a"] = .float32(Tensor(shape: [1]))
        archive["h"] = .raw(dtype: .f16, shape: [1], bytes: [0, 0])
        archive["d"] = .raw(dtype: .f64, shape: [1], bytes: [UInt8](repeating: 0, count: 8))
        archive["n"] = .int64(shape: [], values: [0])
        XCTAssertEqual(try SafeTensors(bytes: archive.serialized()).names, ["n", "d", "a", "b", "h"])
        // Byte order, not Unicode order: "Z" (0x5A) < "a" (0x61) < "é" (0xC3 0xA9).
        var names = SafeTensors()
        for n in ["é", "a", "Z"] { names[n] = .float32(Tensor(shape: [1])) }
        XCTAssertEqual(try SafeTensors(bytes: names.serialized()).names, ["Z", "a", "é"])
    }

    func testHeaderIsEightAlignedAndSpacePadded() {
        for length in 1...24 {
            var archive = SafeTensors()
            archive[String(repeating: "x", count: length)] = .float32(Tensor(shape: [3], data: [1, 2, 3]))
            let bytes = archive.serialized()
            var n = 0
            for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
            XCTAssertEqual((8 + n) % 8, 0, "name length \(length)")
            XCTAssertEqual(bytes.count, 8 + n + 12)
            let header = bytes[8..<(8 + n)]
            let close = header.lastIndex(of: UInt8(ascii: "}"))!
            let padding = header[(close + 1)...]
            XCTAssertLessThan(padding.count, 8)
            XCTAssertTrue(padding.allSatisfy { $0 == 0x20 }, "padding must be spaces")
        }
    }

    func testEmptyArchiveMatchesReferenceBytes() throws {
        // The reference library's own test expects exactly these bytes for no tensors.
        XCTAssertEqual(SafeTensors().serialized(), [8, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D, 32, 32, 32, 32, 32, 32])
        let read = try SafeTensors(bytes: SafeTensors().serialized())
        XCTAssertEqual(read.count, 0)
        XCTAssertEqual(read.metadata, [:])
    }

    func testSubscriptReplacesAndRemoves() {
        var archive = SafeTensors()
        archive["a"] = .float32(Tensor(shape: [1]))
        archive["b"] = .int64(shape: [1], values: [1])
        archive["a"] = .int64(shape: [], values: [2])
        XCTAssertEqual(archive.names, ["a", "b"])
        XCTAssertEqual(archive["a"]?.dtype, .i64)
        archive["a"] = nil
        XCTAssertEqual(archive.names, ["b"])
        XCTAssertNil(archive["a"])
        XCTAssertEqual(archive.entries.map(\.name), ["b"])
    }

    func testAccessorErrors() {
        let archive = sampleArchive()
        XCTAssertThrowsError(try archive.float32("fc.weight")) { error in
            guard case .missingTensor(let name, let available)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(name, "fc.weight")
            XCTAssertEqual(available, archive.names)
            XCTAssertTrue("\(error)".contains("fc.weight"))
        }
        XCTAssertThrowsError(try archive.float32("ids")) { error in
            XCTAssertEqual(error as? CheckpointError, .wrongDType(name: "ids", expected: .f32, actual: .i64))
        }
        XCTAssertThrowsError(try archive.int64("conv1.weight")) { error in
            XCTAssertEqual(error as? CheckpointError, .wrongDType(name: "conv1.weight", expected: .i64, actual: .f32))
        }
        XCTAssertThrowsError(try archive.float32("conv1.weight", shape: [2, 1, 3])) { error in
            XCTAssertEqual(
                error as? CheckpointError,
                .wrongShape(name: "conv1.weight", expected: [2, 1, 3], actual: [2, 1, 3, 3]))
        }
    }

    func testDTypeSizes() {
        XCTAssertEqual(DType.allCases.count, 15)
        XCTAssertEqual(DType(rawValue: "F32")?.size, 4)
        XCTAssertEqual(DType(rawValue: "I64")?.size, 8)
        XCTAssertEqual(DType(rawValue: "BF16")?.size, 2)
        XCTAssertEqual(DType(rawValue: "BOOL")?.size, 1)
        XCTAssertNil(DType(rawValue: "f32"))
    }
}
