import TensorCore
import XCTest

/// `max |a - b| / max |b|`: the relative error the golden fixtures are checked with.
public func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
    let x = a.array
    let y = b.array
    precondition(x.count == y.count, "relativeError: \(a.shape) vs \(b.shape)")
    var diff: Float = 0
    var scale: Float = 0
    for i in 0..<x.count {
        diff = max(diff, abs(x[i] - y[i]))
        scale = max(scale, abs(y[i]))
    }
    return scale > 0 ? diff / scale : diff
}

/// Asserts `actual` matches `expected` in size and within relative error `tolerance`.
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, _ tolerance: Float, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(
        actual.count, expected.count, "\(what): \(actual.shape) vs \(expected.shape)", file: file, line: line)
    guard actual.count == expected.count else { return }
    let e = relativeError(actual, expected)
    XCTAssertLessThanOrEqual(e, tolerance, "\(what): relative error \(e)", file: file, line: line)
}
