import Attacks
import Foundation
import Kernels
import Models
import NN
import TensorCore
import Training

/// The `rrmd bench` workloads: the networks, batch and shapes of `shared/peers/` (float32,
/// batch 128, 3x32x32 random input, 10 classes), so results compare with PyTorch's.
public enum Benchmarks {
    /// Result of one workload.
    public struct Result: Codable, Sendable {
        /// Median images/s.
        public var imagesPerSecond: Double
        /// Achieved GFLOP/s (a train step counts 3x the forward FLOPs).
        public var gflops: Double
        /// Forward FLOPs per image.
        public var forwardFLOPsPerImage: Int
        /// Raw measurements.
        public var measurement: BenchMeasurement
        /// Peak resident bytes of the whole process while the workload ran (model, data and
        /// runtime included), when the kernel reports it.
        public var peakResidentBytes: Int?

        enum CodingKeys: String, CodingKey {
            case imagesPerSecond = "images_per_s", gflops, forwardFLOPsPerImage = "fwd_flops_per_image", measurement
            case peakResidentBytes = "peak_rss_bytes"
        }
    }

    /// The workloads `rrmd bench` runs by default, in report order.
    public static let workloads = ["resnet20_train", "resnet20_infer", "vgg_small_train", "rrm_step", "pgd10"]

    /// Workloads run only when asked for (`--only`): a model-zoo-sized RRM step takes seconds.
    public static let optionalWorkloads = ["rrm_step_wrn"]

    /// Every workload `run` understands.
    public static var knownWorkloads: [String] { workloads + optionalWorkloads }

    /// Batch size of every workload.
    public static let batch = 128

    /// The VGG-style network of `shared/peers/common.py`: conv64-conv64-pool-conv128-conv128-
    /// pool-conv256-pool-fc, each conv 3x3 (no bias) + BN + ReLU.
    public static func vggSmall(seed: UInt64 = 0) -> Network {
        var rng = RNG(seed: seed)
        let config = ModelConfig(channels: 3, height: 32, width: 32, numClasses: 10)
        var layers: [Layer] = []
        var cin = 3
        for v in [64, 64, 0, 128, 128, 0, 256, 0] {
            if v == 0 {
                layers.append(MaxPool2d(kernel: 2))
                continue
            }
            layers += [Conv2d(cin, v, kernel: 3, padding: 1, bias: false, rng: &rng), BatchNorm2d(v), ReLU()]
            cin = v
        }
        let body = Sequential([("body", Sequential(ConvBNReLU.fusing(indexed: layers))), ("flatten", Flatten())])
        return Network(
            architecture: "vgg-small", config: config, body: body,
            classifier: Linear(256 * 4 * 4, 10, rng: &rng), classifierName: "fc")
    }

    /// A random batch in [0, 1) with random labels.
    static func randomBatch(seed: UInt64) -> (Tensor, [Int32]) {
        var rng = RNG(seed: seed)
        var x = Tensor(uninitializedShape: [batch, 3, 32, 32])
        let n = x.count
        x.withUnsafeMutablePointer { p in for i in 0..<n { p[i] = rng.uniform() } }
        return (x, (0..<batch).map { _ in Int32(rng.below(10)) })
    }

    /// Runs workload `name` with `timer`, recording the process's peak resident memory while
    /// it runs (everything cached before it is released first).
    public static func run(_ name: String, timer: BenchTimer) throws -> Result {
        PeakMemory.reset()
        var result = try measure(name, timer: timer)
        result.peakResidentBytes = PeakMemory.peakResidentBytes()
        return result
    }

    static func measure(_ name: String, timer: BenchTimer) throws -> Result {
        let (x, y) = randomBatch(seed: 0)
        if name == "rrm_step" { return try rrmStep(x: x, y: y, timer: timer) }
        if name == "rrm_step_wrn" { return try rrmStepWRN(x: x, y: y, timer: timer) }
        let model: Network
        switch name {
        case "resnet20_train", "resnet20_infer", "pgd10":
            model = try ModelRegistry.make(
                "resnet20", config: ModelConfig(channels: 3, height: 32, width: 32, numClasses: 10), seed: 0)
        case "vgg_small_train":
            model = vggSmall()
        default:
            throw ModelError.unknownArchitecture(name)
        }
        let flops = model.forwardFLOPsPerImage
        let m: BenchMeasurement
        var factor = 3.0
        if name.hasSuffix("_infer") {
            factor = 1
            m = timer.measure(images: batch) { _ = model.forward(x, mode: .inference) }
        } else if name == "pgd10" {
            // bench_pgd.py: L-inf eps 8/255, step 2/255, 10 steps from a random start, model in
            // inference mode; each step is a forward and an input-only backward (counted as 2x
            // forward, as the peer does). rrmd's attack also scores its final point, one more
            // forward the peer's loop skips, so the comparison slightly favours the peer.
            let config = PGDConfig(
                norm: .linf, epsilon: 8 / 255, stepSize: 2 / 255, iterations: 10, restarts: 1, randomStart: true)
            var rng = RNG(seed: 3)
            factor = 20
            m = timer.measure(images: batch) { _ = PGD.attack(model, x: x, labels: y, config: config, rng: &rng) }
        } else {
            let sgd = SGD(parameters: model.namedParameters(), settings: .init(momentum: 0.9, weightDecay: 5e-4))
            m = timer.measure(images: batch) {
                sgd.zeroGradients()
                let logits = model.forward(x, mode: .training)
                let loss = softmaxCrossEntropy(logits: logits, labels: y)
                _ = model.backward(loss.gradient, parameterGradients: true)
                sgd.step(lr: 0.1)
            }
        }
        return Result(
            imagesPerSecond: m.imagesPerSecond, gflops: factor * Double(flops) * m.imagesPerSecond / 1e9,
            forwardFLOPsPerImage: flops, measurement: m)
    }

    /// bench_rrm.py: one RRM step of a ResNet-20 student whose 64-d representation is projected
    /// to 256-d, against a frozen 4x-wide ResNet-20 teacher in inference mode; loss
    /// 0.005 CE + mean(1 - cos).
    static func rrmStep(x: Tensor, y: [Int32], timer: BenchTimer) throws -> Result {
        try rrmStep(teacher: ("resnet20", 4), student: "resnet20", x: x, y: y, timer: timer)
    }

    /// `Tools/peers/bench_rrm_wrn.py`: one RRM step of a ResNet-18 student (CIFAR variant) whose
    /// 512-d representation is projected to 640-d, against a frozen WRN-28-10 teacher in inference
    /// mode (the model zoo's most common robust architecture); loss 0.005 CE + mean(1 - cos).
    static func rrmStepWRN(x: Tensor, y: [Int32], timer: BenchTimer) throws -> Result {
        try rrmStep(teacher: ("wideresnet-28-10", 1), student: "resnet18", x: x, y: y, timer: timer)
    }

    /// One paper RRM step of `student` (projected to the teacher's width) against the frozen
    /// `teacher` (architecture, width multiplier). FLOPs per image count 3x the student's forward
    /// plus the teacher's.
    static func rrmStep(
        teacher spec: (arch: String, width: Double), student arch: String, x: Tensor, y: [Int32], timer: BenchTimer
    ) throws -> Result {
        var config = ModelConfig(channels: 3, height: 32, width: 32, numClasses: 10)
        config.widthMultiplier = spec.width
        let teacher = try ModelRegistry.make(spec.arch, config: config, seed: 1)
        config.widthMultiplier = 1
        config.projection = teacher.representationWidth
        let student = try ModelRegistry.make(arch, config: config, seed: 0)
        let trainer = Trainer(model: student, settings: TrainingSettings(objective: .rrm(RRMLoss())), teacher: teacher)
        let m = timer.measure(images: batch) { trainer.benchmarkStep(images: x, labels: y) }
        let flops = 3 * student.forwardFLOPsPerImage + teacher.forwardFLOPsPerImage
        return Result(
            imagesPerSecond: m.imagesPerSecond, gflops: Double(flops) * m.imagesPerSecond / 1e9,
            forwardFLOPsPerImage: student.forwardFLOPsPerImage, measurement: m)
    }

    /// OpenBLAS sgemm GFLOP/s at 2048^3 with all compute threads (median of `repeats`).
    public static func sgemmGFLOPS(size: Int = 2048, repeats: Int = 5) -> Double {
        let n = size
        var rng = RNG(seed: 1)
        let a = (0..<(n * n)).map { _ in rng.uniform() - 0.5 }
        let b = (0..<(n * n)).map { _ in rng.uniform() - 0.5 }
        var c = [Float](repeating: 0, count: n * n)
        var rates: [Double] = []
        Compute.withBLASThreads {
            for r in 0..<(repeats + 1) {
                let t0 = now()
                c.withUnsafeMutableBufferPointer { cp in
                    gemm(
                        transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a, lda: n, b: b, ldb: n, beta: 0,
                        c: cp.baseAddress!, ldc: n)
                }
                if r > 0 { rates.append(2 * Double(n) * Double(n) * Double(n) / (now() - t0) / 1e9) }
            }
        }
        return median(rates)
    }
}
