import Checkpoint
import TensorCore
import XCTest

/// Every structural defect must surface as a typed `CheckpointError`, never a crash.
final class InvalidInputTests: XCTestCase {
    let f32x2 = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    let eight = [UInt8](repeating: 1, count: 8)

    func testTheBaselineIsValid() throws {
        XCTAssertEqual(try SafeTensors(bytes: makeFile(f32x2, data: eight)).float32("a").count, 2)
        // Unpadded headers, whitespace and unknown entry fields are legal JSON the reference accepts.
        let loose = " {\n\"a\" : {\"shape\":[ 2 ],\"extra\":null,\"dtype\":\"F32\",\"data_offsets\":[0,8]}}\t"
        XCTAssertEqual(try SafeTensors(bytes: makeFile(loose, data: eight, pad: false)).float32("a").shape, [2])
    }

    func testTruncated() {
        for size in 0..<8 {
            assertRejects([UInt8](repeating: 0, count: size), "size \(size)") {
                if case .truncated(_, size) = $0 { return true }
                return false
            }
        }
        let file = makeFile(f32x2, data: eight)
        // Cut inside the header: the declared length no longer fits.
        assertRejects(Array(file.prefix(20)), "cut in header") {
            if case .headerTooLarge = $0 { return true }
            return false
        }
        // Cut inside the data: the tensor reaches past the end.
        assertRejects(Array(file.dropLast()), "cut in data") {
            if case .offsetsOutOfBounds(_, "a", 0, 8, 7) = $0 { return true }
            return false
        }
    }

    func testHeaderLengthTooLarge() {
        for declared: UInt64 in [200_000_000, UInt64(Int.max), .max, 1 << 63] {
            var file: [UInt8] = []
            withUnsafeBytes(of: declared.littleEndian) { file += $0 }
            file += Array("{}      ".utf8)
            assertRejects(file, "declared \(declared)") {
                if case .headerTooLarge(_, declared, _) = $0 { return true }
                return false
            }
        }
    }

    func testBadJSON() {
        let cases: [(String, String)] = [
            (#"{"a":"#, "unterminated"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}"#, "trailing comma"),
            (#"{'a':1}"#, "single quotes"),
            (#"[]"#, "array at top level"),
            (#""x""#, "string at top level"),
            (#"{"a":01}"#, "leading zero"),
            (#"{"a":"\x"}"#, "bad escape"),
            (#"{"a":"\ud800"}"#, "lone surrogate"),
            (#"{} {}"#, "two values"),
            ("{\"a\u{01}\":1}", "raw control character"),
            ("", "empty header"),
            (#"{"a":tru}"#, "bad literal"),
            (String(repeating: "[", count: 100_000), "deep nesting"),
            (
                "{\"a\":" + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}",
                "nesting over the cap"
            ),
        ]
        for (json, what) in cases {
            assertRejects(makeFile(json), what) {
                if case .invalidHeader = $0 { return true }
                return false
            }
        }
        assertRejects(makeFile(headerBytes: Array(#"{"a":""#.utf8) + [0xFF, 0xFE] + Array(#""}  "#.utf8)), "not UTF-8")
        {
            if case .invalidHeader(_, let reason) = $0 { return reason.contains("UTF-8") }
            return false
        }
    }

    func testOffsetsOutOfBounds() {
        assertRejects(makeFile(f32x2, data: [0, 0, 0, 0]), "short data") {
            if case .offsetsOutOfBounds(_, "a", 0, 8, 4) = $0 { return true }
            return false
        }
        let far = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4611686018427387904,4611686018427387912]}}"#
        assertRejects(makeFile(far, data: eight), "huge offsets") {
            if case .offsetsOutOfBounds = $0 { return true }
            return false
        }
        let beyondInt = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999999]}}"#
        assertRejects(makeFile(beyondInt, data: eight), "offset beyond Int") {
            if case .invalidEntry = $0 { return true }
            return false
        }
    }

    func testOverlap() {
        let json =
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertRejects(makeFile(json, data: [UInt8](repeating: 0, count: 12)), "overlap") {
            if case .overlap(_, "b", "a", 4, 8) = $0 { return true }
            return false
        }
        let same =
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                + #""b":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}"#
        assertRejects(makeFile(same, data: eight), "aliased") {
            if case .overlap = $0 { return true }
            return false
        }
        let emptyInside =
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                + #""z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#
        assertRejects(makeFile(emptyInside, data: eight), "empty tensor inside another") {
            if case .overlap(_, "z", "a", 4, 8) = $0 { return true }
            return false
        }
    }

    func testHoles() {
        let middle =
            #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
                + #""b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        assertRejects(makeFile(middle, data: [UInt8](repeating: 0, count: 12)), "hole in the middle") {
            if case .gap(_, "a", 4, 8) = $0 { return true }
            return false
        }
        let start = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        assertRejects(makeFile(start, data: eight), "hole at the start") {
            if case .gap(_, nil, 0, 4) = $0 { return true }
            return false
        }
        let trailing = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        assertRejects(makeFile(trailing, data: eight), "trailing bytes") {
            if case .gap(_, "a", 4, 8) = $0 { return true }
            return false
        }
        assertRejects(makeFile("{}", data: [0]), "data without tensors") {
            if case .gap(_, nil, 0, 1) = $0 { return true }
            return false
        }
    }

    func testWrongByteSize() {
        let json = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        assertRejects(makeFile(json, data: eight), "3 floats in 8 bytes") {
            if case .sizeMismatch(_, "a", [3], .f32, 12, 8) = $0 { return true }
            return false
        }
        let scalar = #"{"n":{"dtype":"I64","shape":[],"data_offsets":[0,4]}}"#
        assertRejects(makeFile(scalar, data: [0, 0, 0, 0]), "short scalar") {
            if case .sizeMismatch(_, "n", [], .i64, 8, 4) = $0 { return true }
            return false
        }
        let overflow = #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#
        assertRejects(makeFile(overflow, data: eight), "element count overflow") {
            if case .sizeOverflow(_, "a", _, .f32) = $0 { return true }
            return false
        }
        let byteOverflow = #"{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#
        assertRejects(makeFile(byteOverflow, data: eight), "byte count overflow") {
            if case .sizeOverflow = $0 { return true }
            return false
        }
    }

    func testUnknownDType() {
        for dtype in ["F128", "f32", "", "F4", "Q8"] {
            let json = #"{"a":{"dtype":"\#(dtype)","shape":[2],"data_offsets":[0,8]}}"#
            assertRejects(makeFile(json, data: eight), dtype) {
                if case .unknownDType(_, "a", dtype) = $0 { return true }
                return false
            }
        }
    }

    func testMetadataNotStrings() {
        let tensor = #""a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        let cases: [(String, String?)] = [
            (#"{"__metadata__":{"k":1},\#(tensor)}"#, "k"),
            (#"{"__metadata__":{"ok":"x","k":null},\#(tensor)}"#, "k"),
            (#"{"__metadata__":{"k":["v"]},\#(tensor)}"#, "k"),
            (#"{"__metadata__":{"k":"v","k":"w"},\#(tensor)}"#, "k"),
            (#"{"__metadata__":"v",\#(tensor)}"#, nil),
            (#"{"__metadata__":{},"__metadata__":{},\#(tensor)}"#, nil),
        ]
        for (json, key) in cases {
            assertRejects(makeFile(json, data: eight), json) {
                if case .invalidMetadata(_, key, _) = $0 { return true }
                return false
            }
        }
    }

    func testMalformedEntries() {
        let cases: [(String, String)] = [
            (#"{"a":"F32"}"#, "entry is a string"),
            (#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, "missing dtype"),
            (#"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, "missing shape"),
            (#"{"a":{"dtype":"F32","shape":[2]}}"#, "missing offsets"),
            (#"{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}"#, "dtype not a string"),
            (#"{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#, "shape not an array"),
            (#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, "negative dimension"),
            (#"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, "fractional dimension"),
            (#"{"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}"#, "exponent dimension"),
            (#"{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, "string dimension"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, "one offset"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}"#, "three offsets"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, "reversed offsets"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[-1,7]}}"#, "negative offset"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":{"0":8}}}"#, "offsets an object"),
            (#"{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, "repeated field"),
        ]
        for (json, what) in cases {
            assertRejects(makeFile(json, data: eight), what) {
                if case .invalidEntry(_, "a", _) = $0 { return true }
                return false
            }
        }
        let twice =
            #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
                + #""a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        assertRejects(makeFile(twice, data: eight), "duplicate name") {
            if case .duplicateName(_, "a") = $0 { return true }
            return false
        }
    }

    func testMessagesSayWhatWhereAndWhatToDo() {
        let json = #"{"fc.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        do {
            _ = try SafeTensors(bytes: makeFile(json, data: eight), source: "/spool/incoming/teacher.safetensors")
            XCTFail("expected an error")
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains("/spool/incoming/teacher.safetensors"), text)
            XCTAssertTrue(text.contains("fc.weight"), text)
            XCTAssertTrue(text.contains("12") && text.contains("8"), text)
            XCTAssertTrue(text.contains("re-export"), text)
        }
    }

    /// Every prefix and many random corruptions of a real file must parse or throw, never trap.
    func testCorruptedFilesNeverCrash() {
        let file = PythonReferenceTests.allDTypesFile
        for length in 0..<file.count {
            XCTAssertThrowsError(try SafeTensors(bytes: Array(file.prefix(length))), "prefix \(length)")
        }
        var rng = SystemRandomNumberGenerator()
        var parsed = 0
        for _ in 0..<3000 {
            var bytes = file
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                _ = try SafeTensors(bytes: bytes)
                parsed += 1  // e.g. a flipped data byte, which the format cannot detect
            } catch {
                XCTAssertTrue(error is CheckpointError, "\(error)")
            }
        }
        XCTAssertGreaterThan(parsed, 0)
    }
}
