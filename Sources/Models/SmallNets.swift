import NN
import TensorCore

extension ModelRegistry {
    /// `mlp`: flatten, two hidden ReLU layers of 256 (the representation), classifier `fc`.
    static func mlp(_ c: ModelConfig, _ rng: inout RNG) -> BuiltBody {
        let hidden = c.scaled(256)
        let body = Sequential([
            normalize(c), ("flatten", Flatten()),
            ("fc1", Linear(c.channels * c.height * c.width, hidden, rng: &rng)), ("relu1", ReLU()),
            ("fc2", Linear(hidden, hidden, rng: &rng)), ("relu2", ReLU()),
        ])
        return BuiltBody(body: body, width: hidden, classifierName: "fc")
    }

    /// `cnn-small`: two conv-BN-ReLU-maxpool stages (32, 64 channels), a 128-unit hidden layer
    /// (the representation), classifier `fc`. An MNIST-scale network.
    static func cnnSmall(_ c: ModelConfig, _ rng: inout RNG) throws -> BuiltBody {
        guard c.height >= 4, c.width >= 4 else {
            throw ModelError.invalidConfig(
                "cnn-small pools twice by 2 and needs images of at least 4x4, got \(c.height)x\(c.width)")
        }
        let c1 = c.scaled(32)
        let c2 = c.scaled(64)
        let hidden = c.scaled(128)
        let flat = c2 * (c.height / 4) * (c.width / 4)
        let body = Sequential(
            [normalize(c)]
                + convBNReLU("1", c.channels, c1, &rng) + [("pool1", MaxPool2d(kernel: 2))]
                + convBNReLU("2", c1, c2, &rng) + [("pool2", MaxPool2d(kernel: 2))]
                + [("flatten", Flatten()), ("fc1", Linear(flat, hidden, rng: &rng)), ("relu3", ReLU())])
        return BuiltBody(body: body, width: hidden, classifierName: "fc")
    }

    /// `vgg11` (CIFAR variant with BatchNorm): `features` as PyTorch's indexed Sequential; a
    /// max pool that would shrink a map below 1x1 becomes an identity (keeping indices), then
    /// global average pooling gives the 512-d representation; classifier `classifier`.
    static func vgg11(_ c: ModelConfig, _ rng: inout RNG) -> BuiltBody {
        let plan: [Int?] = [64, nil, 128, nil, 256, 256, nil, 512, 512, nil, 512, 512, nil]
        var layers: [Layer] = []
        var cin = c.channels
        var h = c.height
        var w = c.width
        for v in plan {
            if let v {
                let cout = c.scaled(v)
                layers += [Conv2d(cin, cout, kernel: 3, padding: 1, bias: true, rng: &rng), BatchNorm2d(cout), ReLU()]
                cin = cout
            } else if h >= 2 && w >= 2 {
                layers.append(MaxPool2d(kernel: 2))
                h /= 2
                w /= 2
            } else {
                layers.append(Identity())
            }
        }
        let features = Sequential(ConvBNReLU.fusing(indexed: layers))
        let body = Sequential([normalize(c), ("features", features), ("pool", GlobalAvgPool())])
        return BuiltBody(body: body, width: cin, classifierName: "classifier")
    }
}
