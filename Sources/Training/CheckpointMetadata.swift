import Models

/// The `__metadata__` keys that make a checkpoint self-describing (design.md §3).
public enum CheckpointMetadata {
    /// Metadata for a model produced by training with `trainedBy` (e.g. `natural`).
    public static func training(model: Network, dataset: String, trainedBy: String, seed: UInt64,
                                threatModel: String = "none", version: String = "0.1.0") -> [String: String] {
        let c = model.config
        func list(_ xs: [Float]) -> String { xs.map { "\($0)" }.joined(separator: ",") }
        return [
            "format": "pt",
            "rrm.arch": model.architecture,
            "rrm.width": "\(c.widthMultiplier)",
            "rrm.dataset": dataset,
            "rrm.num_classes": "\(c.numClasses)",
            "rrm.input_shape": c.inputShape.map(String.init).joined(separator: ","),
            "rrm.mean": list(c.mean),
            "rrm.std": list(c.std),
            "rrm.threat_model": threatModel,
            "rrm.trained_by": trainedBy,
            "rrm.seed": "\(seed)",
            "rrm.version": version,
        ]
    }
}
