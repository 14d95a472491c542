import Kernels

/// Sizes of a registry architecture computed from its configuration alone, so that a size taken
/// from a file or a configuration can be checked before anything that large is allocated.
extension ModelRegistry {
    /// Trainable parameters `make(name, config:)` would create (what `Network.parameterCount`
    /// counts), without building the network. Follows the builders layer by layer; a test
    /// compares it with the built networks over many configurations.
    public static func parameterCount(_ name: String, config c: ModelConfig) throws -> Int {
        try validate(c)
        var body = 0
        var width = 0
        switch name {
        case "mlp":
            let hidden = c.scaled(256)
            body = linear(c.channels * c.height * c.width, hidden) + linear(hidden, hidden)
            width = hidden
        case "cnn-small":
            guard c.height >= 4, c.width >= 4 else {
                throw ModelError.invalidConfig(
                    "cnn-small pools twice by 2 and needs images of at least 4x4, got \(c.height)x\(c.width)")
            }
            let c1 = c.scaled(32)
            let c2 = c.scaled(64)
            let hidden = c.scaled(128)
            body =
                conv(c.channels, c1, 3) + bn(c1) + conv(c1, c2, 3) + bn(c2)
                + linear(c2 * (c.height / 4) * (c.width / 4), hidden)
            width = hidden
        case "resnet20":
            (body, width) = basicResNet(c, widths: [16, 32, 64], blocksPerStage: 3, optionA: true)
        case "resnet18":
            (body, width) = basicResNet(c, widths: [64, 128, 256, 512], blocksPerStage: 2, optionA: false)
        case "vgg11":
            var cin = c.channels
            for v in [64, 128, 256, 256, 512, 512, 512, 512] {
                let cout = c.scaled(v)
                body += conv(cin, cout, 3, bias: true) + bn(cout)
                cin = cout
            }
            width = cin
        case "mobilenetv2":
            var cin = c.scaled(32)
            body = conv(c.channels, cin, 3) + bn(cin)
            for row in [
                (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1),
            ] {
                let cout = c.scaled(row.1)
                for j in 0..<row.2 {
                    let stride = j == 0 ? row.3 : 1
                    let planes = row.0 * cin
                    body +=
                        conv(cin, planes, 1) + bn(planes) + conv(planes, planes, 3, groups: planes) + bn(planes)
                        + conv(planes, cout, 1) + bn(cout)
                    if stride == 1 && cin != cout { body += conv(cin, cout, 1) + bn(cout) }
                    cin = cout
                }
            }
            width = c.scaled(1280)
            body += conv(cin, width, 1) + bn(width)
        case "preactresnet18":
            var cin = c.scaled(64)
            body = conv(c.channels, cin, 3)
            for (i, base) in [64, 128, 256, 512].enumerated() {
                let w = c.scaled(base)
                for j in 0..<2 {
                    body += preActBlock(cin, w, stride: i > 0 && j == 0 ? 2 : 1)
                    cin = w
                }
            }
            width = cin
        case "resnet50":
            var cin = c.scaled(64)
            body = conv(c.channels, cin, 3) + bn(cin)
            for (i, (base, count)) in zip([64, 128, 256, 512], [3, 4, 6, 3]).enumerated() {
                let p = c.scaled(base)
                for j in 0..<count {
                    let stride = i > 0 && j == 0 ? 2 : 1
                    body += conv(cin, p, 1) + bn(p) + conv(p, p, 3) + bn(p) + conv(p, 4 * p, 1) + bn(4 * p)
                    if stride != 1 || cin != 4 * p { body += conv(cin, 4 * p, 1) + bn(4 * p) }
                    cin = 4 * p
                }
            }
            width = cin
        default:
            guard let shape = wideResNetShape(name) else { throw ModelError.unknownArchitecture(name) }
            var cin = c.scaled(16)
            body = conv(c.channels, cin, 3)
            for (i, base) in [16, 32, 64].enumerated() {
                let w = c.scaled(base * shape.widen)
                for j in 0..<(shape.depth - 4) / 6 {
                    body += preActBlock(cin, w, stride: i > 0 && j == 0 ? 2 : 1)
                    cin = w
                }
            }
            body += bn(cin)
            width = cin
        }
        var head = 0
        if let p = c.projection {
            head += linear(width, p, bias: c.projectionBias)
            width = p
        }
        return body + head + linear(width, c.numClasses)
    }

    /// Refuses, before building, a network whose parameters alone would not fit in the memory
    /// this process can still allocate (a width or input size from a file or a configuration).
    static func checkMemory(_ name: String, config: ModelConfig) throws {
        let bytes = try parameterCount(name, config: config).multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        do {
            try MemoryBudget.check(
                bytes.overflow ? Int.max : bytes.partialValue,
                for:
                    "building \(name) ×\(config.widthMultiplier) for input "
                    + "\(config.inputShape.map(String.init).joined(separator: "x")) with \(config.numClasses) "
                    + "classes",
                whatToDo:
                    "use a smaller width multiplier (or check the checkpoint's rrm.* metadata), or run where more "
                    + "memory is available"
            )
        } catch let e as NotEnoughMemory {
            throw ModelError.notEnoughMemory(e)
        }
    }

    private static func conv(_ cin: Int, _ cout: Int, _ k: Int, groups: Int = 1, bias: Bool = false) -> Int {
        cout * (cin / groups) * k * k + (bias ? cout : 0)
    }

    private static func bn(_ c: Int) -> Int { 2 * c }

    private static func linear(_ inputs: Int, _ outputs: Int, bias: Bool = true) -> Int {
        inputs * outputs + (bias ? outputs : 0)
    }

    /// A 3x3 stem and stages of basic blocks (the first block of every stage but the first
    /// strided), as `resnet20` and `resnet18` build them: their parameters and output width.
    private static func basicResNet(
        _ c: ModelConfig, widths base: [Int], blocksPerStage: Int, optionA: Bool
    ) -> (Int, Int) {
        let widths = base.map(c.scaled)
        var cin = widths[0]
        var n = conv(c.channels, cin, 3) + bn(cin)
        for (stage, w) in widths.enumerated() {
            for j in 0..<blocksPerStage {
                n += basicBlock(cin, w, stride: stage > 0 && j == 0 ? 2 : 1, optionA: optionA)
                cin = w
            }
        }
        return (n, cin)
    }

    /// `PreActBlock`: two BatchNorms and 3x3 convolutions, a 1x1 projection where the shape changes.
    private static func preActBlock(_ cin: Int, _ cout: Int, stride: Int) -> Int {
        bn(cin) + conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3)
            + (stride != 1 || cin != cout ? conv(cin, cout, 1) : 0)
    }

    private static func basicBlock(_ cin: Int, _ cout: Int, stride: Int, optionA: Bool) -> Int {
        var n = conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3) + bn(cout)
        if (stride != 1 || cin != cout) && !optionA { n += conv(cin, cout, 1) + bn(cout) }
        return n
    }
}
