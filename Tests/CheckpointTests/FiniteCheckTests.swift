import Checkpoint
import TensorCore
import XCTest

/// A diverged run's NaN/Inf weights must be reportable by name.
final class FiniteCheckTests: XCTestCase {
    func testCleanArchivePasses() throws {
        var archive = sampleCheckpoint()
        // Extremes that are still finite.
        archive["edge"] = .float32(
            Tensor(
                shape: [4], data: [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, -0.0, .leastNonzeroMagnitude]))
        archive["f64"] = .raw(
            dtype: .f64, shape: [1],
            bytes: Array(withUnsafeBytes(of: Double.greatestFiniteMagnitude.bitPattern.littleEndian) { Array($0) }))
        archive["u8"] = .raw(dtype: .u8, shape: [2], bytes: [0xFF, 0xFF])
        archive["empty"] = .float32(Tensor(shape: [0]))
        XCTAssertEqual(archive.nonFiniteTensorNames(), [])
        XCTAssertNoThrow(try archive.validateFinite())
    }

    func testNonFiniteTensorsAreNamedInOrder() throws {
        var archive = SafeTensors()
        archive["ok"] = .float32(Tensor(shape: [2], data: [1, 2]))
        archive["nan"] = .float32(Tensor(shape: [3], data: [0, .nan, 0]))
        archive["inf"] = .float32(Tensor(shape: [], data: [-.infinity]))
        archive["count"] = .int64(shape: [], values: [.max])
        archive["half.inf"] = .raw(dtype: .f16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0x7C])
        archive["bf16.nan"] = .raw(dtype: .bf16, shape: [1], bytes: [0xC1, 0xFF])
        archive["f64.ninf"] = .raw(
            dtype: .f64, shape: [1],
            bytes: Array(withUnsafeBytes(of: (-Double.infinity).bitPattern.littleEndian) { Array($0) }))
        archive["f16.ok"] = .raw(dtype: .f16, shape: [1], bytes: [0xFF, 0x7B])  // 65504, the largest half
        let expected = ["nan", "inf", "half.inf", "bf16.nan", "f64.ninf"]
        XCTAssertEqual(archive.nonFiniteTensorNames(), expected)

        // The same after a compressed round trip, with the file named in the error.
        let read = try SafeTensors(bytes: archive.serialized(compression: .zstd()))
        XCTAssertEqual(Set(read.nonFiniteTensorNames()), Set(expected))
        XCTAssertThrowsError(try read.validateFinite(source: "teacher.safetensors.zst")) { error in
            guard case CheckpointError.nonFinite("teacher.safetensors.zst", let names)? = error as? CheckpointError
            else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(Set(names), Set(expected))
            XCTAssertTrue("\(error)".contains("teacher.safetensors.zst") && "\(error)".contains("'nan'"), "\(error)")
        }
    }
}
