import ArgumentParser
import Attacks
import Checkpoint
import Data
import Foundation
import Kernels
import ModelIO
import Models
import NN
import Pipeline
import Training

/// `rrmd train`: natural or adversarial training of a registry architecture on a dataset.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract:
            "Train a registry architecture on a dataset, naturally or adversarially, and save it as a safetensors "
            + "checkpoint.",
        discussion: """
            Architectures: \(ModelRegistry.names.joined(separator: ", ")). \
            Datasets: \(DatasetCatalog.knownNames.joined(separator: ", ")).
            --adversarial pgd trains on PGD examples (Madry et al.; a robust teacher), fgsm-rs on FGSM examples \
            from a random start (Wong et al.'s Fast-AT, usually with --schedule cyclic). Epsilons accept fractions \
            such as 8/255.
            """)

    @Option(help: "Architecture name.") var arch: String
    @Option(help: "Dataset name.") var dataset: String
    @Option(
        name: .customLong("data-dir"),
        help: "Directory holding the dataset files (default: the dataset's standard location).") var dataDir: String?
    @Option(help: "Output checkpoint path (.safetensors, or .safetensors.zst for a zstd-compressed file).") var out:
        String
    @Option(help: "Epochs.") var epochs = 10
    @Option(name: .customLong("batch-size"), help: "Images per step.") var batchSize = 128
    @Option(help: "Peak learning rate.") var lr: Float = 0.1
    @Option(
        help:
            "Learning-rate schedule: \(TrainingSettings.ScheduleKind.allCases.map(\.rawValue).joined(separator: ", "))."
    ) var schedule = "cosine"
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Option(name: .customLong("weight-decay"), help: "SGD weight decay.") var weightDecay: Float = 5e-4
    @Flag(help: "Nesterov momentum.") var nesterov = false
    @Option(name: .customLong("crop-padding"), help: "Random-crop padding in pixels (default: image size / 8).")
    var cropPadding: Int?
    @Flag(name: .customLong("no-flip"), help: "Disable random horizontal flips.") var noFlip = false
    @Option(help: "Width multiplier of the architecture.") var width = 1.0
    @Option(help: "Random seed (initialisation, shuffling, augmentation).") var seed: UInt64 = 0
    @Option(help: "Compute threads (default: all cores).") var threads = 0
    @Option(help: "Use only the first N training and test samples (quick runs).") var limit: Int?
    @Option(
        name: .customLong("image-size"),
        help:
            ArgumentHelp(
                "Side of the square images an image-folder dataset is scaled and cropped to (a --dataset "
                    + "name the catalog does not know, read from --data-dir: ROOT/train/<class>/*.png|jpg and "
                    + "ROOT/test/..., or ROOT/<class>/...).")
    ) var imageSize = 32
    @Option(help: "Channels of an image-folder dataset's images: 3 (RGB) or 1 (grey).") var channels = 3
    @Option(
        help:
            ArgumentHelp(
                "Adversarial training: none, pgd (PGD-AT), fgsm-rs (Fast-AT) or free (Free-AT: RRM's replays "
                    + "without a teacher).")
    ) var adversarial = "none"
    @Option(help: "Threat-model norm for --adversarial pgd: linf or l2 (fgsm-rs is linf only).") var norm = "linf"
    @Option(help: "Attack radius in [0, 1] pixel units, e.g. 0.1 or 8/255 (required with --adversarial).") var epsilon:
        String?
    @Option(
        name: .customLong("attack-step"),
        help: "Attack step size (default: 2.5 * epsilon / steps for pgd, 1.25 * epsilon for fgsm-rs).") var attackStep:
        String?
    @Option(name: .customLong("attack-steps"), help: "PGD steps per training batch.") var attackSteps = 7
    @Option(help: "Optimiser steps per batch for --adversarial free (default 4).") var replays: Int?
    @Option(
        name: .customLong("epsilon-ramp"),
        help:
            ArgumentHelp(
                "Epochs over which the attack radius grows linearly from 0 to --epsilon (0: full radius from "
                    + "the first step; e.g. 2 for MNIST at 0.3).")
    ) var epsilonRamp = 0.0
    @Option(
        help:
            ArgumentHelp(
                "Resumable state file: saved at every epoch end and on Ctrl-C/SIGTERM; if it exists, the run "
                    + "continues from it; removed once the model is saved.")
    ) var state: String?
    @Flag(help: "Print a JSON summary on stdout at the end.") var json = false

    func run() throws {
        Compute.configure(threads: threads)
        guard let kind = TrainingSettings.ScheduleKind(rawValue: schedule) else {
            throw ValidationError(
                "unknown schedule '\(schedule)'; known: "
                    + "\(TrainingSettings.ScheduleKind.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        let data = try DatasetCatalog.loadAny(
            dataset, directory: dataDir, limit: limit, folderShape: [channels, imageSize, imageSize])
        let stats = data.train.channelStatistics()
        let config = ModelConfig(
            channels: data.train.channels, height: data.train.height, width: data.train.width,
            numClasses: data.train.numClasses, widthMultiplier: width, mean: stats.mean, std: stats.std)
        let model = try ModelRegistry.make(arch, config: config, seed: seed)
        var settings = TrainingSettings(
            epochs: epochs, batchSize: batchSize, learningRate: lr, schedule: kind,
            sgd: .init(momentum: momentum, weightDecay: weightDecay, nesterov: nesterov),
            cropPadding: cropPadding ?? max(data.train.height, data.train.width) / 8, horizontalFlip: !noFlip,
            seed: seed,
            objective: try objective())
        settings.epsilonRampEpochs = epsilonRamp
        if let problem = settings.problem() { throw ValidationError(problem) }
        let reporter = ProgressReporter()
        let images = "\(data.train.count) train / \(data.test.count) test images"
        let ramp = epsilonRamp > 0 ? " (radius ramped up over \(epsilonRamp) epochs)" : ""
        reporter.line(
            "training \(arch) (\(model.parameterCount) parameters) on \(dataset): \(images), \(epochs) epochs, "
                + "batch \(batchSize), \(settings.objective.summary)\(ramp), \(Compute.threads) threads")
        let trainer = Trainer(model: model, settings: settings)
        let needed = try trainer.preflight(trainingSamples: data.train.count)
        reporter.line(
            "memory: about \(needed >> 20) MiB beyond the model and data (gradients, momentum, one batch's activations)"
        )
        if let state {
            ProcessSignals.installStopHandlers()
            if FileManager.default.fileExists(atPath: state) {
                try trainer.restoreState(from: state)
                reporter.line(
                    "resuming from \(state) at epoch \(trainer.position.epoch + 1), step \(trainer.position.step)")
            }
        }
        let finished = try trainer.run(
            train: data.train, test: data.test, shouldStop: { ProcessSignals.stopRequested },
            epochEnd: { t in if let state { try t.saveState(to: state) } }
        ) { p in
            reporter.training(p, batchSize: settings.batchSize)
        }
        guard let summary = finished else {
            if let state { try trainer.saveState(to: state) }
            reporter.line(
                "stopped at epoch \(trainer.position.epoch + 1), step \(trainer.position.step); state saved in "
                    + "\(state ?? "-"); run the same command to continue"
            )
            throw ExitCode(130)
        }
        let recipe =
            "\(settings.objective.summary)\(epsilonRamp > 0 ? " epsilon-ramp=\(epsilonRamp) epochs" : ""); sgd "
            + "lr=\(lr) momentum=\(momentum) wd=\(weightDecay)\(nesterov ? " nesterov" : "") \(schedule), "
            + "\(epochs) epochs, batch \(batchSize)"
        let metadata = ModelMetadata(
            model: model, dataset: data.train.name, threatModel: settings.objective.threatModel,
            trainedBy: settings.objective.methodName, training: recipe, seed: seed,
            producer: RRMDVersion.producer)
        try SafeTensors(model.stateTensors(), metadata: metadata.dictionary)
            .write(toFile: out, compression: .forPath(out))
        // The run is complete and saved: a state left behind would make the next run with the
        // same --state "continue" a finished run (as `rrmd distill` does, it goes).
        if let state { try? FileManager.default.removeItem(atPath: state) }
        reporter.line(
            String(
                format: "test accuracy %.2f%% after %.1f s; saved %@", 100 * summary.test.accuracy, summary.seconds, out
            ))
        if json {
            let object: [String: Any] = [
                "arch": arch, "dataset": dataset, "epochs": epochs, "seed": seed, "threads": Compute.threads,
                "objective": settings.objective.summary, "epsilon_ramp_epochs": epsilonRamp,
                "threat_model": settings.objective.threatModel,
                "test_accuracy": summary.test.accuracy, "test_loss": summary.test.loss, "seconds": summary.seconds,
                "train_loss": summary.epochs.map(\.loss), "train_accuracy": summary.epochs.map(\.accuracy),
                "parameters": model.parameterCount, "out": out,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// The objective the adversarial options describe; every inconsistency is a usage error.
    private func objective() throws -> TrainingObjective {
        guard let method = ["none", "pgd", "fgsm-rs", "free"].first(where: { $0 == adversarial }) else {
            throw ValidationError("unknown --adversarial '\(adversarial)'; use none, pgd, fgsm-rs or free")
        }
        if replays != nil && method != "free" { throw ValidationError("--replays needs --adversarial free") }
        if method == "none" {
            if epsilon != nil || attackStep != nil {
                throw ValidationError("--epsilon and --attack-step need --adversarial pgd or fgsm-rs")
            }
            return .natural
        }
        guard let text = epsilon else {
            throw ValidationError("--adversarial \(method) needs --epsilon, e.g. --epsilon 0.1 or --epsilon 8/255")
        }
        guard let eps = parseEpsilon(text), eps > 0 else {
            throw ValidationError("--epsilon '\(text)' is not a positive number or fraction such as 8/255")
        }
        guard let threatNorm = ThreatNorm(rawValue: norm) else {
            throw ValidationError("unknown --norm '\(norm)'; use linf or l2")
        }
        var step: Double?
        if let s = attackStep {
            guard let v = parseEpsilon(s), v > 0 else {
                throw ValidationError("--attack-step '\(s)' is not a positive number or fraction")
            }
            step = v
        }
        if method == "free" {
            guard threatNorm == .linf else {
                throw ValidationError(
                    "free adversarial training is an L-inf method; use --adversarial pgd for --norm l2")
            }
            if attackStep != nil {
                throw ValidationError(
                    "--attack-step does not apply to --adversarial free (each replay steps by --epsilon)")
            }
            return .freeAT(epsilon: Float(eps), replays: replays ?? 4)
        }
        if method == "fgsm-rs" {
            guard threatNorm == .linf else {
                throw ValidationError("fgsm-rs is an L-inf method; use --adversarial pgd for --norm l2")
            }
            return .fgsmRS(epsilon: Float(eps), stepSize: Float(step ?? 1.25 * eps))
        }
        guard attackSteps >= 1 else { throw ValidationError("--attack-steps must be at least 1, got \(attackSteps)") }
        return .pgdAT(
            PGDConfig(
                norm: threatNorm, epsilon: Float(eps), stepSize: Float(step ?? 2.5 * eps / Double(attackSteps)),
                iterations: attackSteps, restarts: 1, randomStart: true))
    }
}
