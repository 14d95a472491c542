import Kernels
import NN
import TensorCore

/// An error building a model from a name or configuration.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// The name is not in the registry.
    case unknownArchitecture(String)
    /// The configuration cannot work for the architecture.
    case invalidConfig(String)
    /// The network would not fit in the memory this process can allocate.
    case notEnoughMemory(NotEnoughMemory)

    public var description: String {
        switch self {
        case .unknownArchitecture(let name):
            return "unknown architecture '\(name)'; known: \(ModelRegistry.names.joined(separator: ", "))"
        case .invalidConfig(let why):
            return "invalid model configuration: \(why)"
        case .notEnoughMemory(let e):
            return "\(e)"
        }
    }
}

/// What an architecture builder makes: the body and what the head is attached to; `make` adds
/// the optional projection and the classifier the same way for every architecture.
struct BuiltBody {
    /// Pixels `[N, C, H, W]` to features `[N, width]`.
    var body: Sequential
    /// Width D of the body's features.
    var width: Int
    /// State-dict name of the classifier in the PyTorch twin (`fc`, `classifier`).
    var classifierName: String
}

/// Architectures by name. Every one is named like the state_dict of its PyTorch twin in
/// `Tools/pytorch/rrmd_models.py` and adapts to the input channels, image size and classes.
public enum ModelRegistry {
    /// Registry names, in the order they are documented.
    /// `wideresnet-28-10` stands for the family `wideresnet-<depth>-<widen>` (`isKnown`).
    public static let names = [
        "mlp", "cnn-small", "resnet20", "resnet18", "vgg11", "mobilenetv2", "preactresnet18", "resnet50",
        "wideresnet-28-10",
    ]

    /// Whether `name` is a registry architecture: one of `names`, or any
    /// `wideresnet-<depth>-<widen>` with depth 6n + 4.
    public static func isKnown(_ name: String) -> Bool { names.contains(name) || wideResNetShape(name) != nil }

    /// Natural representation width of each architecture at width multiplier 1 (before scaling
    /// and before any projection); `make` checks its builders against this table.
    static let baseRepresentationWidths: [String: Int] = [
        "mlp": 256, "cnn-small": 128, "resnet20": 64, "resnet18": 512, "vgg11": 512, "mobilenetv2": 1280,
        "preactresnet18": 512,
    ]

    /// Largest projection width `make` accepts; far beyond any registry body, it only stops a
    /// corrupt configuration from allocating absurd layers.
    public static let maxProjectionWidth = 65536

    /// Width D of the features architecture `name`'s body produces for `config`, ignoring
    /// `config.projection`; computed without building the network (the distiller compares it with
    /// the teacher's width to decide whether a student needs a projection).
    public static func bodyWidth(_ name: String, config: ModelConfig) throws -> Int {
        // Widths the builders compute from a scaled base, not by scaling the final width.
        if name == "resnet50" { return 4 * config.scaled(512) }
        if let shape = wideResNetShape(name) { return config.scaled(64 * shape.widen) }
        guard let base = baseRepresentationWidths[name] else { throw ModelError.unknownArchitecture(name) }
        return config.scaled(base)
    }

    /// Width of the representation `make(name, config:)` would give: `config.projection` when set,
    /// otherwise the body's width.
    public static func representationWidth(_ name: String, config: ModelConfig) throws -> Int {
        let d = try bodyWidth(name, config: config)
        return config.projection ?? d
    }

    /// Builds architecture `name` for `config`, initialised from `seed` like PyTorch's defaults.
    /// With `config.projection = P` the body's features pass through `projection`
    /// (`Linear(D -> P)`, with a bias when `config.projectionBias`) before the classifier `Linear(P -> K)`.
    public static func make(_ name: String, config: ModelConfig, seed: UInt64) throws -> Network {
        try checkMemory(name, config: config)
        var rng = RNG(seed: seed)
        let built: BuiltBody
        switch name {
        case "mlp": built = mlp(config, &rng)
        case "cnn-small": built = try cnnSmall(config, &rng)
        case "resnet20": built = resnet20(config, &rng)
        case "resnet18": built = resnet18(config, &rng)
        case "vgg11": built = vgg11(config, &rng)
        case "mobilenetv2": built = mobileNetV2(config, &rng)
        case "preactresnet18": built = preActResNet18(config, &rng)
        case "resnet50": built = resnet50(config, &rng)
        default:
            guard let shape = wideResNetShape(name) else { throw ModelError.unknownArchitecture(name) }
            built = wideResNet(depth: shape.depth, widen: shape.widen, config, &rng)
        }
        let expectedWidth = try bodyWidth(name, config: config)
        precondition(
            built.width == expectedWidth,
            "\(name): body gives \(built.width) features but baseRepresentationWidths says \(expectedWidth)")
        // Head parameters are drawn after the body's, projection first: without a projection the
        // random stream (hence every seeded model) is the same as before projections existed.
        var width = built.width
        var projection: Linear? = nil
        if let p = config.projection {
            projection = Linear(width, p, bias: config.projectionBias, rng: &rng)
            width = p
        }
        let classifier = Linear(width, config.numClasses, rng: &rng)
        return Network(
            architecture: name, config: config, body: built.body, classifier: classifier,
            classifierName: built.classifierName, projection: projection)
    }

    /// Throws `invalidConfig` for a configuration no architecture can be built for.
    static func validate(_ config: ModelConfig) throws {
        guard config.channels > 0, config.height > 0, config.width > 0, config.numClasses > 1 else {
            throw ModelError.invalidConfig(
                "need positive input shape and at least 2 classes, got \(config.inputShape) with \(config.numClasses) "
                    + "classes"
            )
        }
        guard config.widthMultiplier > 0, config.widthMultiplier <= 64 else {
            throw ModelError.invalidConfig("width multiplier \(config.widthMultiplier) outside (0, 64]")
        }
        guard config.mean.count == config.channels, config.std.count == config.channels,
            config.std.allSatisfy({ $0 > 0 })
        else {
            throw ModelError.invalidConfig(
                "normalisation needs \(config.channels) means and positive stds, got \(config.mean) and \(config.std)")
        }
        if let p = config.projection, !(1...maxProjectionWidth).contains(p) {
            throw ModelError.invalidConfig(
                "projection width \(p) outside 1...\(maxProjectionWidth); use the teacher's representation width, or "
                    + "nil for no projection"
            )
        }
    }

    /// The input normalisation every model starts with.
    static func normalize(_ c: ModelConfig) -> (String, Layer) {
        ("normalize", Normalize(mean: c.mean, std: c.std))
    }

    /// `conv -> bn -> relu` as one fused child whose parts are named `conv<i>`, `bn<i>`.
    static func convBNReLU(
        _ i: String, _ cin: Int, _ cout: Int, kernel: Int = 3, stride: Int = 1, padding: Int = 1,
        groups: Int = 1, _ rng: inout RNG
    ) -> [(String, Layer)] {
        let conv = Conv2d(
            cin, cout, kernel: kernel, stride: stride, padding: padding, groups: groups, bias: false, rng: &rng)
        return [("", ConvBNReLU(conv, BatchNorm2d(cout), relu: true, names: ("conv" + i, "bn" + i)))]
    }
}
