import Checkpoint
import Foundation
import TensorCore

/// Loads a golden fixture written by `Tools/pytorch/make_golden.py` (in `Tests/ModelsTests/Fixtures`).
public func goldenFixture(_ name: String) throws -> SafeTensors {
    try SafeTensors(contentsOfFile: TestFixtures.goldenDirectory + "/" + name)
}

/// A scalar as a tensor of one element.
public func scalar(_ v: Float) -> Tensor { Tensor(shape: [1], data: [v]) }

/// The largest differences seen between rrmd and a fixture, for the record: printed when
/// `RRMD_GOLDEN_VERBOSE` is set (the assertions themselves use `relativeError`).
public struct MaxAbsDiff {
    /// The largest absolute and relative differences, and where they were seen.
    public private(set) var absolute: Float = 0, relative: Float = 0
    /// The fixture entries where they were seen.
    public private(set) var absoluteKey = "", relativeKey = ""

    /// Nothing seen yet.
    public init() {}

    /// Records the differences of `actual` from `expected` under the name `key`.
    public mutating func add(_ actual: Tensor, _ expected: Tensor, _ key: String) {
        let a = actual.array
        let e = expected.array
        guard a.count == e.count else { return }
        for i in 0..<a.count where abs(a[i] - e[i]) > absolute {
            absolute = abs(a[i] - e[i])
            absoluteKey = key
        }
        let r = relativeError(actual.reshaped(expected.shape), expected)
        if r > relative {
            relative = r
            relativeKey = key
        }
    }

    /// Prints the largest differences when `RRMD_GOLDEN_VERBOSE` is set.
    public func report(_ what: String) {
        if ProcessInfo.processInfo.environment["RRMD_GOLDEN_VERBOSE"] != nil {
            print(
                "\(what): max |rrmd - PyTorch| = \(absolute) (\(absoluteKey)); max relative error \(relative) "
                    + "(\(relativeKey))"
            )
        }
    }
}
