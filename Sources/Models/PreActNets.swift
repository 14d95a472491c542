import NN
import TensorCore

extension ModelRegistry {
    /// `preactresnet18`: RobustBench's `PreActResNet18` (CIFAR variant): a 3x3 stem convolution
    /// without BatchNorm, `layer1`…`layer4` of two pre-activation blocks (widths 64/128/256/512,
    /// 1x1 projection shortcuts `shortcut.0` on the raw block input), no activation before the
    /// pooling (`bn_before_fc=False`), classifier `linear`; 512-d representation.
    static func preActResNet18(_ c: ModelConfig, _ rng: inout RNG) -> BuiltBody {
        let widths = [64, 128, 256, 512].map(c.scaled)
        var cin = widths[0]
        var children: [(String, Layer)] = [
            normalize(c), ("conv1", Conv2d(c.channels, cin, kernel: 3, padding: 1, bias: false, rng: &rng)),
        ]
        for (i, w) in widths.enumerated() {
            var blocks: [Layer] = []
            for j in 0..<2 {
                blocks.append(
                    PreActBlock(
                        cin, w, stride: i > 0 && j == 0 ? 2 : 1, shortcutInput: .raw, shortcutName: "shortcut.0",
                        rng: &rng))
                cin = w
            }
            children.append(("layer\(i + 1)", Sequential(indexed: blocks)))
        }
        children.append(("pool", GlobalAvgPool()))
        return BuiltBody(body: Sequential(children), width: cin, classifierName: "linear")
    }

    /// The depth and widen factor of a `wideresnet-<depth>-<widen>` name (depth 6n+4, n >= 1),
    /// or nil when `name` is not one.
    public static func wideResNetShape(_ name: String) -> (depth: Int, widen: Int)? {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "wideresnet", let depth = Int(parts[1]), let widen = Int(parts[2]),
            depth >= 10, depth <= 400, (depth - 4) % 6 == 0, (1...32).contains(widen)
        else { return nil }
        return (depth, widen)
    }

    /// `wideresnet-<depth>-<widen>`: RobustBench's `WideResNet` (from TRADES): a 3x3 stem
    /// `conv1`, three `block<i>.layer` stages of (depth - 4) / 6 pre-activation blocks (widths
    /// 16·widen, 32·widen, 64·widen; `convShortcut` on the pre-activated input when the width
    /// changes), then `bn1` and a ReLU before the pooling; classifier `fc`; 64·widen-d
    /// representation. WRN-28-10, WRN-34-10 and WRN-70-16 are `wideresnet-28-10`, ….
    static func wideResNet(depth: Int, widen: Int, _ c: ModelConfig, _ rng: inout RNG) -> BuiltBody {
        let blocksPerStage = (depth - 4) / 6
        var cin = c.scaled(16)
        var children: [(String, Layer)] = [
            normalize(c), ("conv1", Conv2d(c.channels, cin, kernel: 3, padding: 1, bias: false, rng: &rng)),
        ]
        for (i, base) in [16, 32, 64].enumerated() {
            let w = c.scaled(base * widen)
            var blocks: [Layer] = []
            for j in 0..<blocksPerStage {
                blocks.append(
                    PreActBlock(
                        cin, w, stride: i > 0 && j == 0 ? 2 : 1, shortcutInput: .preActivated,
                        shortcutName: "convShortcut", rng: &rng))
                cin = w
            }
            children.append(("block\(i + 1)", Sequential([("layer", Sequential(indexed: blocks))])))
        }
        children += [("bn1", BatchNorm2d(cin)), ("relu", ReLU()), ("pool", GlobalAvgPool())]
        return BuiltBody(body: Sequential(children), width: cin, classifierName: "fc")
    }
}
