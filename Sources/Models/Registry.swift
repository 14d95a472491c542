import NN
import TensorCore

/// An error building a model from a name or configuration.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// The name is not in the registry.
    case unknownArchitecture(String)
    /// The configuration cannot work for the architecture.
    case invalidConfig(String)

    public var description: String {
        switch self {
        case .unknownArchitecture(let name):
            return "unknown architecture '\(name)'; known: \(ModelRegistry.names.joined(separator: ", "))"
        case .invalidConfig(let why):
            return "invalid model configuration: \(why)"
        }
    }
}

/// Architectures by name. Every one is named like the state_dict of its PyTorch twin in
/// `Tools/pytorch/rrmd_models.py` and adapts to the input channels, image size and classes.
public enum ModelRegistry {
    /// Registry names, in the order they are documented.
    public static let names = ["mlp", "cnn-small", "resnet20", "resnet18", "vgg11", "mobilenetv2"]

    /// Builds architecture `name` for `config`, initialised from `seed` like PyTorch's defaults.
    public static func make(_ name: String, config: ModelConfig, seed: UInt64) throws -> Network {
        guard config.channels > 0, config.height > 0, config.width > 0, config.numClasses > 1 else {
            throw ModelError.invalidConfig("need positive input shape and at least 2 classes, got \(config.inputShape) with \(config.numClasses) classes")
        }
        guard config.widthMultiplier > 0, config.widthMultiplier <= 64 else {
            throw ModelError.invalidConfig("width multiplier \(config.widthMultiplier) outside (0, 64]")
        }
        guard config.mean.count == config.channels, config.std.count == config.channels, config.std.allSatisfy({ $0 > 0 }) else {
            throw ModelError.invalidConfig("normalisation needs \(config.channels) means and positive stds, got \(config.mean) and \(config.std)")
        }
        var rng = RNG(seed: seed)
        switch name {
        case "mlp": return mlp(config, &rng)
        case "cnn-small": return try cnnSmall(config, &rng)
        case "resnet20": return resnet20(config, &rng)
        case "resnet18": return resnet18(config, &rng)
        case "vgg11": return vgg11(config, &rng)
        case "mobilenetv2": return mobileNetV2(config, &rng)
        default: throw ModelError.unknownArchitecture(name)
        }
    }

    /// The input normalisation every model starts with.
    static func normalize(_ c: ModelConfig) -> (String, Layer) {
        ("normalize", Normalize(mean: c.mean, std: c.std))
    }

    /// `conv -> bn -> relu` children named `conv<i>`, `bn<i>`.
    static func convBNReLU(_ i: String, _ cin: Int, _ cout: Int, kernel: Int = 3, stride: Int = 1, padding: Int = 1,
                           groups: Int = 1, _ rng: inout RNG) -> [(String, Layer)] {
        [("conv" + i, Conv2d(cin, cout, kernel: kernel, stride: stride, padding: padding, groups: groups, bias: false, rng: &rng)),
         ("bn" + i, BatchNorm2d(cout)), ("relu" + i, ReLU())]
    }
}
