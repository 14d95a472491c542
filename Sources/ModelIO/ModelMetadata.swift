import Attacks
import Checkpoint
import Data
import Models

/// The self-describing part of a checkpoint (`__metadata__`, keys documented in
/// docs/checkpoints.md), parsed and validated.
public struct ModelMetadata: Equatable, Sendable {
    /// Schema version this build writes and reads.
    public static let formatVersion = "1"

    /// Registry architecture.
    public var architecture: String
    /// Dataset the model was trained on.
    public var dataset: String
    /// Input geometry, classes, width, normalisation and projection head (`rrm.projection`).
    public var config: ModelConfig
    /// `none`, `linf:<eps>` or `l2:<eps>`.
    public var threatModel: String
    /// How it was trained (`natural`, `pgd-at`, `fgsm-rs`, `free-at`, `rrm`, `external`), if known.
    public var trainedBy: String?
    /// The training recipe in one line (objective, attack settings, optimiser), if known.
    public var training: String?
    /// Seed of the run that made it, if known.
    public var seed: UInt64?
    /// SHA-256 of the teacher an RRM student was distilled from.
    public var teacherSHA256: String?
    /// Who wrote the file (e.g. `rrmd 0.1.0`).
    public var producer: String?

    /// Metadata for a model rrmd is about to save.
    public init(
        model: Network, dataset: String, threatModel: String = "none", trainedBy: String?, training: String? = nil,
        seed: UInt64?, teacherSHA256: String? = nil, producer: String? = RRMDVersion.producer
    ) {
        architecture = model.architecture
        config = model.config
        self.dataset = dataset
        self.threatModel = threatModel
        self.trainedBy = trainedBy
        self.training = training
        self.seed = seed
        self.teacherSHA256 = teacherSHA256
        self.producer = producer
    }

    /// True when `metadata` carries rrmd keys at all (a plain PyTorch state_dict has none).
    public static func isPresent(in metadata: [String: String]) -> Bool {
        metadata.keys.contains { $0.hasPrefix("rrm.") }
    }

    /// Parses and validates `metadata`; every problem names the key and what is expected.
    public init(_ metadata: [String: String]) throws {
        func required(_ key: String) throws -> String {
            guard let v = metadata[key], !v.isEmpty else { throw ModelMetadataError.missing(key) }
            return v
        }
        func bad(_ key: String, _ expected: String) -> ModelMetadataError {
            .invalid(key: key, value: metadata[key] ?? "", expected: expected)
        }
        if let v = metadata["rrm.format"], v != Self.formatVersion {
            throw bad("rrm.format", "schema version \(Self.formatVersion); this file was written by a newer rrmd")
        }
        architecture = try required("rrm.arch")
        guard ModelRegistry.isKnown(architecture) else {
            throw bad(
                "rrm.arch", "one of \(ModelRegistry.names.joined(separator: ", ")) (any wideresnet-<depth>-<widen>)")
        }
        dataset = try required("rrm.dataset")
        guard let classes = Int(try required("rrm.num_classes")), classes >= 2, classes <= 100_000 else {
            throw bad("rrm.num_classes", "an integer from 2 to 100000")
        }
        let shape = try required("rrm.input_shape").split(separator: ",").map {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        guard shape.count == 3, let c = shape[0], let h = shape[1], let w = shape[2],
            (1...64).contains(c), (1...4096).contains(h), (1...4096).contains(w)
        else {
            throw bad("rrm.input_shape", "C,H,W with 1 <= C <= 64 and 1 <= H, W <= 4096, e.g. 3,32,32")
        }
        func floats(_ key: String) throws -> [Float] {
            let v = try required(key).split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard v.count == c, v.allSatisfy({ $0 != nil && $0!.isFinite }) else {
                throw bad(key, "\(c) comma-separated finite numbers")
            }
            return v.map { $0! }
        }
        let mean = try floats("rrm.mean")
        let std = try floats("rrm.std")
        guard std.allSatisfy({ $0 > 0 }) else { throw bad("rrm.std", "positive numbers") }
        let width = metadata["rrm.width"].map { Double($0) } ?? 1
        guard let width, width > 0, width <= 64 else { throw bad("rrm.width", "a width multiplier in (0, 64]") }
        var projection: Int?
        if let p = metadata["rrm.projection"] {
            // Absent means no projection; present, it must be a usable width (an empty or zero
            // value is an error rather than "none", so a damaged file is not silently misread).
            guard p.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(p),
                (1...ModelRegistry.maxProjectionWidth).contains(v)
            else {
                throw bad(
                    "rrm.projection",
                    "an integer from 1 to \(ModelRegistry.maxProjectionWidth) (the projection head's output width), "
                        + "or absent for none"
                )
            }
            projection = v
        }
        var projectionBias = false
        if let b = metadata["rrm.projection_bias"] {
            guard projection != nil, b == "true" || b == "false" else {
                throw bad("rrm.projection_bias", "true or false, and only with rrm.projection")
            }
            projectionBias = b == "true"
        }
        config = ModelConfig(
            channels: c, height: h, width: w, numClasses: classes, widthMultiplier: width, mean: mean, std: std,
            projection: projection, projectionBias: projectionBias)
        threatModel = metadata["rrm.threat_model"] ?? "none"
        guard ThreatModel(threatModel) != nil else {
            throw bad("rrm.threat_model", "none, linf:<eps> or l2:<eps> (eps a number or fraction such as 8/255)")
        }
        trainedBy = metadata["rrm.trained_by"]
        training = metadata["rrm.training"]
        if let s = metadata["rrm.seed"] {
            guard let v = UInt64(s) else { throw bad("rrm.seed", "a non-negative integer") }
            seed = v
        }
        teacherSHA256 = metadata["rrm.teacher_sha256"]
        if let t = teacherSHA256, t.count != 64 || !t.allSatisfy(\.isHexDigit) {
            throw bad("rrm.teacher_sha256", "64 hexadecimal digits")
        }
        producer = metadata["rrm.producer"]
    }

    /// The `__metadata__` map to write (keys in docs/checkpoints.md).
    public var dictionary: [String: String] {
        func list(_ xs: [Float]) -> String { xs.map { "\($0)" }.joined(separator: ",") }
        var d: [String: String] = [
            "format": "pt",
            "rrm.format": Self.formatVersion,
            "rrm.arch": architecture,
            "rrm.width": "\(config.widthMultiplier)",
            "rrm.dataset": dataset,
            "rrm.num_classes": "\(config.numClasses)",
            "rrm.input_shape": config.inputShape.map(String.init).joined(separator: ","),
            "rrm.mean": list(config.mean),
            "rrm.std": list(config.std),
            "rrm.threat_model": threatModel,
        ]
        d["rrm.projection"] = config.projection.map { "\($0)" }
        // Written only when true, so checkpoints without a biased projection are unchanged.
        if config.projection != nil && config.projectionBias { d["rrm.projection_bias"] = "true" }
        d["rrm.trained_by"] = trainedBy
        d["rrm.training"] = training
        d["rrm.seed"] = seed.map { "\($0)" }
        d["rrm.teacher_sha256"] = teacherSHA256
        d["rrm.producer"] = producer
        return d
    }
}

/// A problem with a checkpoint's `rrm.*` metadata.
public enum ModelMetadataError: Error, CustomStringConvertible, Equatable {
    /// A required key is absent or empty.
    case missing(String)
    /// A key's value is not of the expected form.
    case invalid(key: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .missing(let key):
            return "checkpoint metadata lacks '\(key)'; add it to __metadata__ (see docs/checkpoints.md for every key)"
        case .invalid(let key, let value, let expected):
            return "checkpoint metadata '\(key)' is '\(value)' but must be \(expected) (see docs/checkpoints.md)"
        }
    }
}
