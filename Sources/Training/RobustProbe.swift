import Attacks
import Data
import Models
import NN
import TensorCore

/// A cheap robustness check run after every epoch: PGD on a fixed set of images, and a guard
/// that takes back the weights of the most robust epoch when training has since lost robustness.
///
/// Replayed training can overfit to its own replays while its training and clean test accuracy
/// keep rising (docs/rrm-study.md: a resnet20 student ended at 49.8 % under APGD where a shorter
/// run of the same recipe kept 71.9 %). Clean accuracy cannot see that, and neither can a weak
/// attack: that student still resisted PGD-10 on 70.7 % of its training images, while APGD-CE
/// took it to 69 / 64 / 59 % at 10 / 20 / 50 iterations (healthy students level off by 20).
/// APGD-CE with 50 iterations on a few hundred images sees it, at a few percent of an epoch's
/// cost (Wong et al. 2020 stop fast adversarial training on a similar signal).
public struct RobustProbe {
    /// The images attacked (a fixed slice, no augmentation).
    public var images: Dataset
    /// The attack: APGD-CE in the threat model's ball.
    public var apgd: APGDConfig
    /// Seed of the attack's random starts; the same every epoch, so epochs differ only by weights.
    public var seed: UInt64
    /// How many points (percent) the last epoch's probe may lie under the best epoch's before
    /// the best epoch's weights are taken back; nil only measures. A collapse costs tens of
    /// points; two measurements on the same 512 images differ by far less than 10 by chance.
    public var restoreBelowBest: Double?

    /// A probe of `images` under `apgd`.
    public init(images: Dataset, apgd: APGDConfig, seed: UInt64 = 0, restoreBelowBest: Double? = 10) {
        self.images = images
        self.apgd = apgd
        self.seed = seed
        self.restoreBelowBest = restoreBelowBest
    }

    /// The usual probe: APGD-CE with `iterations` on the first `count` images of `images`.
    public static func standard(
        images: Dataset, count: Int = 512, norm: ThreatNorm, epsilon: Float, iterations: Int = 50
    ) -> RobustProbe {
        RobustProbe(
            images: images.prefix(count),
            apgd: APGDConfig(norm: norm, epsilon: epsilon, iterations: iterations, stopWhenFooled: true))
    }

    /// The fraction of the probe's images `model` classifies correctly after the attack.
    public func measure(_ model: Network, batchSize: Int = 256) -> Double {
        var iterator = images.batches(options: .evaluation(batchSize: batchSize), seed: 0, epoch: 0)
        var x = Tensor(shape: [0])
        var labels: [Int32] = []
        var rng = RNG(seed: seed)
        var correct = 0, seen = 0
        while iterator.next(into: &x, labels: &labels) {
            let result = APGD.attack(model, x: x, labels: labels, config: apgd, rng: &rng)
            correct += result.success.lazy.filter { !$0 }.count
            seen += labels.count
        }
        return seen > 0 ? Double(correct) / Double(seen) : 0
    }

    /// Whether a run whose best probe was `best` and whose last is `last` (fractions) should take
    /// the best epoch's weights back.
    public func shouldRestore(best: Double, last: Double) -> Bool {
        guard let margin = restoreBelowBest else { return false }
        return (best - last) * 100 > margin
    }
}
