import Checkpoint
import Foundation
import TensorCore
import TestSupport
import XCTest

/// Loads a golden fixture written by `Tools/pytorch/make_golden.py`.
func fixture(_ name: String) throws -> SafeTensors {
    let dir = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return try SafeTensors(contentsOfFile: dir.appendingPathComponent(name).path)
}

/// A scalar tensor as a Tensor of one element.
func scalar(_ v: Float) -> Tensor { Tensor(shape: [1], data: [v]) }
