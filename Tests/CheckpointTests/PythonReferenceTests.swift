import Checkpoint
import TensorCore
import XCTest

/// Files written by the reference Python library, embedded so the tests never need Python.
///
/// Produced once with safetensors 0.8.0 / torch 2.13.0 (`/work/torchvenv`):
/// ```python
/// save_file({"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "n": torch.tensor(7)},
///           path, metadata={"k": "v"})                                   # simpleFile
/// save({"u8": torch.tensor([200], dtype=torch.uint8), "b": torch.tensor([True, False]),
///       "i8": torch.tensor([-3], dtype=torch.int8), "i16": torch.tensor([-300], dtype=torch.int16),
///       "f16": torch.tensor([1.5], dtype=torch.float16), "bf16": torch.tensor([-2.0], dtype=torch.bfloat16),
///       "i32": torch.tensor([-70000], dtype=torch.int32), "f32": torch.tensor([0.25, -1.0]),
///       "f64": torch.tensor([3.5], dtype=torch.float64), "i64": torch.tensor([[-1, 2**40]]),
///       "z": torch.zeros(0, 3), "bn.num_batches_tracked": torch.tensor(5),
///       'e"\\/\x01\t\u00e9\x7f': torch.tensor([9.0])},
///      metadata={"rrm.note": 'r\u00e9s "q"\n\x02/'})                          # allDTypesFile
/// ```
final class PythonReferenceTests: XCTestCase {
    static let simpleFile = base64Bytes(
        "iAAAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJrIjoidiJ9LCJuIjp7ImR0eXBlIjoiSTY0Iiwic2hhcGUiOltdLCJkYXRhX29mZnNldHMiOlsw"
            + "LDhdfSwiYSI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMiwzXSwiZGF0YV9vZmZzZXRzIjpbOCwzMl19fSAgBwAAAAAAAAAAAAAAAA"
            + "CAPwAAAEAAAEBAAACAQAAAoEA=")

    static let allDTypesFile = base64Bytes(
        "OAMAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJycm0ubm90ZSI6InLDqXMgXCJxXCJcblx1MDAwMi8ifSwiYm4ubnVtX2JhdGNoZXNfdHJhY2tl"
            + "ZCI6eyJkdHlwZSI6Ikk2NCIsInNoYXBlIjpbXSwiZGF0YV9vZmZzZXRzIjpbMCw4XX0sImk2NCI6eyJkdHlwZSI6Ikk2NCIsInNoYX"
            + "BlIjpb"
            + "MSwyXSwiZGF0YV9vZmZzZXRzIjpbOCwyNF19LCJmNjQiOnsiZHR5cGUiOiJGNjQiLCJzaGFwZSI6WzFdLCJkYXRhX29mZnNldHMiOl"
            + "syNCwz"
            + "Ml19LCJlXCJcXC9cdTAwMDFcdMOpfyI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMV0sImRhdGFfb2Zmc2V0cyI6WzMyLDM2XX0sIm"
            + "YzMiI6"
            + "eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMl0sImRhdGFfb2Zmc2V0cyI6WzM2LDQ0XX0sInoiOnsiZHR5cGUiOiJGMzIiLCJzaGFwZS"
            + "I6WzAs"
            + "M10sImRhdGFfb2Zmc2V0cyI6WzQ0LDQ0XX0sImkzMiI6eyJkdHlwZSI6IkkzMiIsInNoYXBlIjpbMV0sImRhdGFfb2Zmc2V0cyI6Wz"
            + "Q0LDQ4"
            + "XX0sImJmMTYiOnsiZHR5cGUiOiJCRjE2Iiwic2hhcGUiOlsxXSwiZGF0YV9vZmZzZXRzIjpbNDgsNTBdfSwiZjE2Ijp7ImR0eXBlIj"
            + "oiRjE2"
            + "Iiwic2hhcGUiOlsxXSwiZGF0YV9vZmZzZXRzIjpbNTAsNTJdfSwiaTE2Ijp7ImR0eXBlIjoiSTE2Iiwic2hhcGUiOlsxXSwiZGF0YV"
            + "9vZmZz"
            + "ZXRzIjpbNTIsNTRdfSwiaTgiOnsiZHR5cGUiOiJJOCIsInNoYXBlIjpbMV0sImRhdGFfb2Zmc2V0cyI6WzU0LDU1XX0sInU4Ijp7Im"
            + "R0eXBl"
            + "IjoiVTgiLCJzaGFwZSI6WzFdLCJkYXRhX29mZnNldHMiOls1NSw1Nl19LCJiIjp7ImR0eXBlIjoiQk9PTCIsInNoYXBlIjpbMl0sIm"
            + "RhdGFf"
            + "b2Zmc2V0cyI6WzU2LDU4XX19ICAgIAUAAAAAAAAA//////////8AAAAAAAEAAAAAAAAAAAxAAAAQQQAAgD4AAIC/kO7+/wDAAD7U/v"
            + "3IAQA="
    )

    /// A name exercising every JSON escape rule the reference writer applies (and does not).
    static let oddName = "e\"\\/\u{01}\t\u{e9}\u{7f}"

    func testReadsSimpleFile() throws {
        let archive = try SafeTensors(bytes: Self.simpleFile)
        XCTAssertEqual(archive.names, ["n", "a"])  // data order
        XCTAssertEqual(archive.metadata, ["k": "v"])
        let a = try archive.float32("a", shape: [2, 3])
        XCTAssertEqual(a.array, [0, 1, 2, 3, 4, 5])
        let n = try archive.int64("n")
        XCTAssertEqual(n.shape, [])
        XCTAssertEqual(n.values, [7])
    }

    func testWriterReproducesSimpleFileExactly() {
        var archive = SafeTensors(metadata: ["k": "v"])
        archive["a"] = .float32(Tensor(shape: [2, 3], data: [0, 1, 2, 3, 4, 5]))
        archive["n"] = .int64(shape: [], values: [7])
        let bytes = archive.serialized()
        XCTAssertEqual(headerText(bytes), headerText(Self.simpleFile))
        XCTAssertEqual(bytes, Self.simpleFile)
    }

    func testReadsEveryDType() throws {
        let archive = try SafeTensors(bytes: Self.allDTypesFile)
        XCTAssertEqual(archive.metadata, ["rrm.note": "r\u{e9}s \"q\"\n\u{02}/"])
        XCTAssertEqual(
            archive.names,
            [
                "bn.num_batches_tracked", "i64", "f64", Self.oddName, "f32", "z",
                "i32", "bf16", "f16", "i16", "i8", "u8", "b",
            ])
        XCTAssertEqual(try archive.int64("bn.num_batches_tracked").shape, [])
        XCTAssertEqual(try archive.int64("bn.num_batches_tracked").values, [5])
        XCTAssertEqual(try archive.int64("i64").shape, [1, 2])
        XCTAssertEqual(try archive.int64("i64").values, [-1, 1 << 40])
        XCTAssertEqual(try archive.float32(Self.oddName).array, [9])
        XCTAssertEqual(try archive.float32("f32", shape: [2]).array, [0.25, -1])
        XCTAssertEqual(try archive.float32("z").shape, [0, 3])
        XCTAssertEqual(try archive.float32("z").count, 0)

        let expectedRaw: [(String, DType, [Int], [UInt8])] = [
            ("f64", .f64, [1], [0, 0, 0, 0, 0, 0, 0x0C, 0x40]),  // 3.5
            ("i32", .i32, [1], [0x90, 0xEE, 0xFE, 0xFF]),  // -70000
            ("bf16", .bf16, [1], [0x00, 0xC0]),  // -2.0
            ("f16", .f16, [1], [0x00, 0x3E]),  // 1.5
            ("i16", .i16, [1], [0xD4, 0xFE]),  // -300
            ("i8", .i8, [1], [0xFD]),  // -3
            ("u8", .u8, [1], [0xC8]),  // 200
            ("b", .bool, [2], [1, 0]),
        ]
        for (name, dtype, shape, bytes) in expectedRaw {
            guard case .raw(let d, let s, let b)? = archive[name] else { return XCTFail("\(name) not raw") }
            XCTAssertEqual(d, dtype, name)
            XCTAssertEqual(s, shape, name)
            XCTAssertEqual(b, bytes, name)
        }
        XCTAssertThrowsError(try archive.float32("f64")) { error in
            XCTAssertEqual(error as? CheckpointError, .wrongDType(name: "f64", expected: .f32, actual: .f64))
        }
    }

    func testWriterReproducesEveryDTypeFileExactly() {
        // Built from scratch in another insertion order, so this checks the writer's ordering,
        // escaping and padding rather than echoing what the reader saw.
        var archive = SafeTensors(metadata: ["rrm.note": "r\u{e9}s \"q\"\n\u{02}/"])
        archive["b"] = .raw(dtype: .bool, shape: [2], bytes: [1, 0])
        archive["u8"] = .raw(dtype: .u8, shape: [1], bytes: [0xC8])
        archive["z"] = .float32(Tensor(shape: [0, 3]))
        archive["f32"] = .float32(Tensor(shape: [2], data: [0.25, -1]))
        archive[Self.oddName] = .float32(Tensor(shape: [1], data: [9]))
        archive["i8"] = .raw(dtype: .i8, shape: [1], bytes: [0xFD])
        archive["i16"] = .raw(dtype: .i16, shape: [1], bytes: [0xD4, 0xFE])
        archive["f16"] = .raw(dtype: .f16, shape: [1], bytes: [0x00, 0x3E])
        archive["bf16"] = .raw(dtype: .bf16, shape: [1], bytes: [0x00, 0xC0])
        archive["i32"] = .raw(dtype: .i32, shape: [1], bytes: [0x90, 0xEE, 0xFE, 0xFF])
        archive["f64"] = .raw(dtype: .f64, shape: [1], bytes: [0, 0, 0, 0, 0, 0, 0x0C, 0x40])
        archive["i64"] = .int64(shape: [1, 2], values: [-1, 1 << 40])
        archive["bn.num_batches_tracked"] = .int64(shape: [], values: [5])
        let bytes = archive.serialized()
        XCTAssertEqual(headerText(bytes), headerText(Self.allDTypesFile))
        XCTAssertEqual(bytes, Self.allDTypesFile)
    }

    func testReadThenWriteIsIdentity() throws {
        for file in [Self.simpleFile, Self.allDTypesFile] {
            XCTAssertEqual(try SafeTensors(bytes: file).serialized(), file)
        }
    }
}
