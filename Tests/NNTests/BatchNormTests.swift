import NN
import TensorCore
import XCTest

/// BatchNorm statistics follow PyTorch: biased variance to normalise, unbiased variance and
/// momentum 0.1 for the running estimates, and a batch counter.
final class BatchNormTests: XCTestCase {
    func testTrainingStatisticsAndRunningUpdate() {
        let bn = BatchNorm2d(1)
        let values: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        let y = bn.forward(Tensor(shape: [2, 1, 2, 2], data: values), mode: .training)
        let mean: Float = 4.5
        let biased: Float = 5.25
        let unbiased: Float = 6
        for (i, v) in values.enumerated() {
            XCTAssertEqual(y[flat: i], (v - mean) / (biased + 1e-5).squareRoot(), accuracy: 1e-5)
        }
        XCTAssertEqual(bn.runningMean.value[flat: 0], 0.1 * mean, accuracy: 1e-6)
        XCTAssertEqual(bn.runningVar.value[flat: 0], 0.9 + 0.1 * unbiased, accuracy: 1e-6)
        XCTAssertEqual(bn.batchesTracked.value, 1)
        let z = bn.forward(Tensor(shape: [1, 1, 1, 1], data: [2]), mode: .inference)
        XCTAssertEqual(z[flat: 0], (2 - 0.45) / (1.5 + 1e-5).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(bn.batchesTracked.value, 1, "inference must not count batches")
    }
}
