import Attacks
import Checkpoint
import Data
import Foundation
import Kernels
import ModelIO
import Models
import NN
import TensorCore
import TestSupport
import Training
import XCTest

/// A cnn-small ×0.5 digits teacher trained `epochs` epochs from `seed`, naturally or (with
/// `pgdEpsilon`) by PGD-AT with 5 steps.
func digitsTeacher(
    _ data: (train: Dataset, test: Dataset), seed: UInt64, epochs: Int, pgdEpsilon: Float? = nil
) throws -> Network {
    let teacher = try digitsModel("cnn-small", data.train, seed: seed)
    let objective: TrainingObjective =
        pgdEpsilon.map { .pgdAT(.standard(norm: .linf, epsilon: $0, iterations: 5)) } ?? .natural
    _ = Trainer(
        model: teacher,
        settings: TrainingSettings(
            epochs: epochs, batchSize: 50, learningRate: 0.05, cropPadding: pgdEpsilon == nil ? 4 : 0,
            seed: seed, objective: objective)
    )
    .run(train: data.train, test: data.test)
    return teacher
}

/// Accuracy of `model` on the whole of `test` under PGD-10 (L-inf `epsilon`, a fixed seed).
func pgdTestAccuracy(_ model: Network, _ test: Dataset, epsilon: Float) -> Double {
    var rng = RNG(seed: 21)
    return PGD.attack(
        model, x: test.images, labels: test.labels,
        config: .standard(norm: .linf, epsilon: epsilon, iterations: 10), rng: &rng
    ).accuracy
}

final class TrainingTests: XCTestCase {
    /// A short run learns the digits, and the same seed gives bit-identical weights.
    func testTrainingLearnsAndIsDeterministic() throws {
        let data = try digits()
        let settings = TrainingSettings(epochs: 4, batchSize: 50, learningRate: 0.05, cropPadding: 1, seed: 3)
        var finals: [[Float]] = []
        for _ in 0..<2 {
            let model = try digitsModel("cnn-small", data.train, seed: 3)
            let summary = Trainer(model: model, settings: settings).run(train: data.train, test: data.test)
            XCTAssertGreaterThan(summary.test.accuracy, 0.9, "cnn-small on digits after 4 epochs")
            XCTAssertLessThan(summary.epochs.last!.loss, summary.epochs.first!.loss)
            finals.append(model.namedParameters().flatMap { $0.1.value.array })
        }
        XCTAssertEqual(finals[0], finals[1], "same seed, same thread count: same weights")
    }

    /// A saved model loads by parameter name into a fresh network and gives the same outputs;
    /// a checkpoint of another shape is refused with both shapes in the message.
    func testCheckpointRoundTripAndMismatch() throws {
        let data = try digits()
        let model = try digitsModel("cnn-small", data.train, seed: 1)
        _ = model.forward(data.train.slice(0..<20).images, mode: .training)  // move the BN statistics
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rrmd-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafeTensors(
            model.stateTensors(),
            metadata: ModelMetadata(model: model, dataset: "digits", trainedBy: "natural", seed: 1).dictionary
        )
        .write(toFile: path, compression: .zstd())
        let loaded = try SafeTensors(contentsOfFile: path)
        XCTAssertEqual(loaded.metadata["rrm.arch"], "cnn-small")
        let copy = try digitsModel("cnn-small", data.train, seed: 99)
        try copy.loadState(from: loaded)
        let x = data.test.slice(0..<16).images
        XCTAssertEqual(copy.forward(x, mode: .inference).array, model.forward(x, mode: .inference).array)

        let wider = try ModelRegistry.make(
            "cnn-small", config: ModelConfig(channels: 1, height: 8, width: 8, numClasses: 10), seed: 0)
        XCTAssertThrowsError(try wider.loadState(from: loaded)) { error in
            guard case ModelStateError.shapeMismatch(let name, let expected, let found) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(name, "conv1.weight")
            XCTAssertEqual(expected, [32, 1, 3, 3])
            XCTAssertEqual(found, [16, 1, 3, 3])
        }
        let other = try digitsModel("mlp", data.train, seed: 0)
        XCTAssertThrowsError(try other.loadState(from: loaded)) { error in
            XCTAssertTrue("\(error)".contains("missing"), "\(error)")
        }
    }
}
