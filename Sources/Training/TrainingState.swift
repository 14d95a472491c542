import Checkpoint
import Foundation
import ModelIO
import Models
import NN
import TensorCore

/// One finished epoch.
public struct EpochRecord: Codable, Equatable, Sendable {
    /// Mean training loss and accuracy over the epoch.
    public var loss, accuracy: Double
    /// The test-set evaluation after it.
    public var test: EvaluationResult
    /// The `RobustProbe`'s accuracy after it, when the run had one.
    public var robust: Double? = nil
}

/// Where a run stands. With the weights (and BatchNorm statistics) and the optimiser's momentum it
/// is the whole state of a run: every random draw derives from the seed, the epoch and the step.
public struct TrainingPosition: Codable, Equatable, Sendable {
    /// The epoch in progress (0-based); equals the epoch count when the run is over.
    public var epoch = 0
    /// Steps done in `epoch`.
    public var step = 0
    /// Running sums over the steps done in `epoch`: loss x images, correct images, images.
    public var lossSum = 0.0, correct = 0, seen = 0
    /// Finished epochs.
    public var history: [EpochRecord] = []
    /// Wall time spent training so far, over every session.
    public var elapsedSeconds = 0.0

    /// The start of a run.
    public init() {}

    /// Moves to the start of `epoch`.
    mutating func startEpoch(_ next: Int) {
        epoch = next
        step = 0
        lossSum = 0
        correct = 0
        seen = 0
    }
}

/// A state file that does not belong to the run that tries to resume from it.
public enum TrainingStateError: Error, CustomStringConvertible, Equatable {
    /// Not a state file at all (or from an incompatible rrmd).
    case notAState(path: String, reason: String)
    /// Written by a run with other settings, model or teacher.
    case otherRun(path: String, expected: String, found: String)

    public var description: String {
        switch self {
        case .notAState(let path, let reason):
            return "\(path) is not an rrmd training state (\(reason)); delete it to start the run afresh"
        case .otherRun(let path, let expected, let found):
            return "\(path) belongs to another run (it was saved for '\(found)', this run is '\(expected)'); "
                + "use the same settings to continue it, or delete it to start afresh"
        }
    }
}

extension Trainer {
    /// Metadata keys of a state file.
    static let positionKey = "rrmd.training_position", fingerprintKey = "rrmd.training_run"

    /// What identifies a run: its settings, the model's shape and the teacher's. A state file
    /// with another fingerprint is refused rather than silently mixed into this run.
    public var fingerprint: String {
        var parts = ["\(settings)", model.architecture, "\(model.config)", "params=\(model.parameterCount)"]
        if let teacher {
            parts += [
                "teacher=\(teacher.architecture)", "\(teacher.config)", "teacher-params=\(teacher.parameterCount)",
            ]
        }
        return parts.joined(separator: " | ")
    }

    /// Writes weights, buffers, momentum and position to `path` atomically (temp file, fsync,
    /// rename, fsync of the directory), so a crash leaves the previous state or the new one.
    public func saveState(to path: String) throws {
        var tensors = model.stateTensors(prefix: "model.")
        for (entry, buffer) in zip(optimizer.parameters, optimizer.momentumBuffers) {
            tensors.append(("momentum." + entry.name, .float32(buffer)))
        }
        if let bestState { tensors += bestState.entries }
        let position = String(decoding: try JSONEncoder().encode(self.position), as: UTF8.self)
        try SafeTensors(tensors, metadata: [Self.positionKey: position, Self.fingerprintKey: fingerprint])
            .write(toFile: path, compression: .zstd(level: 1))
    }

    /// Loads a state written by `saveState` of the same run; afterwards `run` continues from it.
    public func restoreState(from path: String) throws {
        let archive = try SafeTensors(contentsOfFile: path)
        guard let positionText = archive.metadata[Self.positionKey], let found = archive.metadata[Self.fingerprintKey]
        else {
            throw TrainingStateError.notAState(
                path: path, reason: "its metadata lacks \(Self.positionKey) or \(Self.fingerprintKey)")
        }
        guard found == fingerprint else {
            throw TrainingStateError.otherRun(path: path, expected: fingerprint, found: found)
        }
        let restored: TrainingPosition
        do {
            restored = try JSONDecoder().decode(TrainingPosition.self, from: Foundation.Data(positionText.utf8))
        } catch { throw TrainingStateError.notAState(path: path, reason: "unreadable position: \(error)") }
        try model.loadState(from: archive, prefix: "model.")
        let momentum = try optimizer.parameters.compactMap { entry -> Tensor? in
            archive["momentum." + entry.name] == nil
                ? nil : try archive.float32("momentum." + entry.name, shape: entry.parameter.value.shape)
        }
        guard momentum.isEmpty || momentum.count == optimizer.parameters.count else {
            throw TrainingStateError.notAState(
                path: path, reason: "momentum for \(momentum.count) of \(optimizer.parameters.count) parameters")
        }
        optimizer.restoreMomentum(momentum)
        position = restored
        let best = archive.entries.filter { $0.name.hasPrefix(Self.bestPrefix) }
        bestState = best.isEmpty ? nil : SafeTensors(best)
    }
}
