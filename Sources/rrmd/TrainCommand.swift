import ArgumentParser
import Checkpoint
import Data
import Foundation
import Kernels
import Models
import NN
import Training

/// `rrmd train`: natural training of a registry architecture on a dataset.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a registry architecture on a dataset and save it as a safetensors checkpoint.",
        discussion: "Architectures: \(ModelRegistry.names.joined(separator: ", ")). Datasets: \(DatasetCatalog.knownNames.joined(separator: ", ")).")

    @Option(help: "Architecture name.") var arch: String
    @Option(help: "Dataset name.") var dataset: String
    @Option(name: .customLong("data-dir"), help: "Directory holding the dataset files (default: the dataset's standard location).") var dataDir: String?
    @Option(help: "Output checkpoint path (.safetensors, or .safetensors.zst for a zstd-compressed file).") var out: String
    @Option(help: "Epochs.") var epochs = 10
    @Option(name: .customLong("batch-size"), help: "Images per step.") var batchSize = 128
    @Option(help: "Peak learning rate.") var lr: Float = 0.1
    @Option(help: "Learning-rate schedule: \(TrainingSettings.ScheduleKind.allCases.map(\.rawValue).joined(separator: ", ")).") var schedule = "cosine"
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Option(name: .customLong("weight-decay"), help: "SGD weight decay.") var weightDecay: Float = 5e-4
    @Flag(help: "Nesterov momentum.") var nesterov = false
    @Option(name: .customLong("crop-padding"), help: "Random-crop padding in pixels (default: image size / 8).") var cropPadding: Int?
    @Flag(name: .customLong("no-flip"), help: "Disable random horizontal flips.") var noFlip = false
    @Option(help: "Width multiplier of the architecture.") var width = 1.0
    @Option(help: "Random seed (initialisation, shuffling, augmentation).") var seed: UInt64 = 0
    @Option(help: "Compute threads (default: all cores).") var threads = 0
    @Option(help: "Use only the first N training and test samples (quick runs).") var limit: Int?
    @Flag(help: "Print a JSON summary on stdout at the end.") var json = false

    func run() throws {
        Compute.configure(threads: threads)
        guard let kind = TrainingSettings.ScheduleKind(rawValue: schedule) else {
            throw ValidationError("unknown schedule '\(schedule)'; known: \(TrainingSettings.ScheduleKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let data = try DatasetCatalog.load(dataset, directory: dataDir, limit: limit)
        let stats = data.train.channelStatistics()
        let config = ModelConfig(channels: data.train.channels, height: data.train.height, width: data.train.width,
                                 numClasses: data.train.numClasses, widthMultiplier: width, mean: stats.mean, std: stats.std)
        let model = try ModelRegistry.make(arch, config: config, seed: seed)
        let settings = TrainingSettings(
            epochs: epochs, batchSize: batchSize, learningRate: lr, schedule: kind,
            sgd: .init(momentum: momentum, weightDecay: weightDecay, nesterov: nesterov),
            cropPadding: cropPadding ?? max(data.train.height, data.train.width) / 8, horizontalFlip: !noFlip, seed: seed)
        if let problem = settings.problem() { throw ValidationError(problem) }
        let reporter = ProgressReporter()
        reporter.line("training \(arch) (\(model.parameterCount) parameters) on \(dataset): \(data.train.count) train / \(data.test.count) test images, \(epochs) epochs, batch \(batchSize), \(Compute.threads) threads")
        let trainer = NaturalTrainer(model: model, settings: settings)
        let summary = trainer.run(train: data.train, test: data.test) { p in
            let label = "epoch \(p.epoch + 1)/\(p.epochs)"
            if p.epochDone {
                reporter.line(String(format: "%@: loss %.4f, train accuracy %.2f%%, test accuracy %.2f%%, %.0f images/s",
                                     label, p.loss, 100 * p.accuracy, 100 * (p.testAccuracy ?? 0), p.imagesPerSecond))
            } else {
                reporter.update(label: label, done: p.step, total: p.stepsPerEpoch, rate: p.imagesPerSecond / Double(settings.batchSize),
                                unit: "steps", detail: String(format: "loss %.4f acc %.2f%% lr %.4g", p.loss, 100 * p.accuracy, p.learningRate))
            }
        }
        let metadata = ModelMetadata(model: model, dataset: data.train.name, trainedBy: "natural", seed: seed,
                                     producer: "rrmd \(RRMDVersion.string)")
        try SafeTensors(model.stateTensors(), metadata: metadata.dictionary)
            .write(toFile: out, compression: out.hasSuffix(".zst") ? .zstd() : .none)
        reporter.line(String(format: "test accuracy %.2f%% after %.1f s; saved %@", 100 * summary.test.accuracy, summary.seconds, out))
        if json {
            let object: [String: Any] = [
                "arch": arch, "dataset": dataset, "epochs": epochs, "seed": seed, "threads": Compute.threads,
                "test_accuracy": summary.test.accuracy, "test_loss": summary.test.loss, "seconds": summary.seconds,
                "train_loss": summary.epochs.map(\.loss), "train_accuracy": summary.epochs.map(\.accuracy),
                "parameters": model.parameterCount, "out": out,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
