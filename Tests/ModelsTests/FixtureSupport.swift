import Checkpoint
import Foundation
import TensorCore
import XCTest

/// Loads a golden fixture written by `Tools/pytorch/make_golden.py`.
func fixture(_ name: String) throws -> SafeTensors {
    let dir = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return try SafeTensors(contentsOfFile: dir.appendingPathComponent(name).path)
}

/// `max |a - b| / max |b|`, the relative error measure the fixtures' README suggests.
func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
    let x = a.array, y = b.array
    precondition(x.count == y.count, "relativeError: \(a.shape) vs \(b.shape)")
    var diff: Float = 0, scale: Float = 0
    for i in 0..<x.count { diff = max(diff, abs(x[i] - y[i])); scale = max(scale, abs(y[i])) }
    return scale > 0 ? diff / scale : diff
}

/// Asserts `actual` matches `expected` in shape and within relative error `tolerance`.
func assertClose(_ actual: Tensor, _ expected: Tensor, _ tolerance: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): \(actual.shape) vs \(expected.shape)", file: file, line: line)
    guard actual.count == expected.count else { return }
    let e = relativeError(actual, expected)
    XCTAssertLessThanOrEqual(e, tolerance, "\(what): relative error \(e)", file: file, line: line)
}

/// A scalar tensor as a Tensor of one element.
func scalar(_ v: Float) -> Tensor { Tensor(shape: [1], data: [v]) }
