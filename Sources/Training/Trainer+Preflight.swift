import Kernels
import Models
import NN
import TensorCore

extension Trainer {
    /// Bytes a run is expected to allocate beyond what is already held: the student's gradients
    /// and momentum (its weights exist already) and one step's activations at the settings'
    /// batch size. The activations are measured, not modelled: one training step of a throwaway
    /// copy of the student on a batch of 2 (the smallest BatchNorm accepts), scaled linearly to
    /// the batch size (every tensor buffer counts, `BufferPool.peakLiveBytes`), with a margin.
    public func estimatedAdditionalBytes() throws -> Int {
        let parameters = model.parameterCount * MemoryLayout<Float>.size
        let probeBatch = 2
        let probe = try ModelRegistry.make(model.architecture, config: model.config, seed: 0)
        let x = Tensor(shape: [probeBatch] + model.config.inputShape)
        let labels = [Int32](repeating: 0, count: probeBatch)
        let before = BufferPool.liveBytes
        BufferPool.resetPeak()
        let out = probe.forwardWithRepresentation(x, mode: .training)
        let ce = softmaxCrossEntropy(logits: out.logits, labels: labels)
        _ = probe.backward(logitsGradient: ce.gradient, representationGradient: nil, parameterGradients: true)
        let activations = max(0, BufferPool.peakLiveBytes - before)
        // Scaled to the batch, then by 3/2: beside one step's live buffers a run holds freed
        // ones the pool keeps for reuse and an end-of-epoch evaluation's (measured peaks above
        // the process's baseline were 1.14-1.23 times the unscaled estimate).
        let scaled = activations.multipliedReportingOverflow(by: max(1, 3 * settings.batchSize / (2 * probeBatch)))
        let total = (2 * parameters).addingReportingOverflow(scaled.partialValue)
        return scaled.overflow || total.overflow ? Int.max : total.partialValue
    }

    /// Refuses, with a reason, a run that cannot work on `trainingSamples` images: a batch larger
    /// than the data (`TrainingSetupError`), or a run needing more memory than this process can
    /// still allocate (`NotEnoughMemory`), so that a batch size or width from a command line or
    /// a configuration never stops the process (a failed allocation) or the service (the OOM
    /// killer). Returns the estimate of `estimatedAdditionalBytes`.
    @discardableResult
    public func preflight(trainingSamples: Int) throws -> Int {
        if trainingSamples < settings.batchSize {
            throw TrainingSetupError.batchLargerThanData(batchSize: settings.batchSize, samples: trainingSamples)
        }
        let needed = try estimatedAdditionalBytes()
        try MemoryBudget.check(
            needed,
            for:
                "training \(model.architecture) ×\(model.config.widthMultiplier) with batches of \(settings.batchSize)",
            whatToDo: "lower the batch size or the width multiplier, or raise the memory limit")
        return needed
    }
}

/// A run refused before its first step.
public enum TrainingSetupError: Error, CustomStringConvertible, Equatable {
    /// Fewer training images than one batch (the trainer drops incomplete batches).
    case batchLargerThanData(batchSize: Int, samples: Int)

    public var description: String {
        switch self {
        case .batchLargerThanData(let batchSize, let samples):
            return
                "the batch size \(batchSize) is larger than the \(samples) training images; use a batch size of at "
                    + "most \(samples) (or more data)"
        }
    }
}
