import Foundation
import TestSupport
import Training
import XCTest

@testable import Service

final class ServiceConfigTests: XCTestCase {
    /// The repository root (tests run from a checkout).
    let checkout = TestFixtures.checkout.path
    let file = "/etc/rrmd/rrmd.toml"

    func parse(_ text: String, file: String = "/etc/rrmd/rrmd.toml") throws -> ServiceConfig {
        try ServiceConfig.parse(text, file: file)
    }

    /// Parses `text`, expects a `ServiceConfigError` of `kind` and returns it.
    func failure(_ text: String, _ kind: ServiceConfigError.Kind, line: UInt = #line) -> ServiceConfigError? {
        do {
            _ = try parse(text)
            XCTFail("accepted:\n\(text)", line: line)
        } catch let error as ServiceConfigError {
            XCTAssertEqual(error.kind, kind, "\(error)", line: line)
            XCTAssertTrue(error.description.hasPrefix(file), "the message names the file: \(error)", line: line)
            return error
        } catch {
            XCTFail("unexpected \(error)", line: line)
        }
        return nil
    }

    func testDefaults() throws {
        let c = ServiceConfig.default(forCheckout: "/home/me/rrmd/")
        XCTAssertNil(c.file)
        XCTAssertEqual(c.spool, "/home/me/rrmd/Spool")
        XCTAssertEqual(c.threads, 0)
        XCTAssertEqual(c.zstdLevel, 3)
        XCTAssertEqual(c.datasets, ["fashion-mnist": .init(format: .idx, path: "/usr/share/datasets/fashion-mnist")])
        XCTAssertEqual(c.students.architectures, ["cnn-small", "resnet20"])
        XCTAssertEqual(c.students.width, 1)
        XCTAssertEqual(
            c.rrm,
            .init(
                epochs: 5, batchSize: 128, learningRate: 0.1, xentWeight: nil, featureLoss: .cosine,
                seed: 0, limit: nil, replays: 4, replayStart: .random, epsilonRamp: nil))
        // Unset, the weight follows the replays a student actually gets: 0.5 with replays, the
        // paper's 0.005 for an L2 teacher's single step; replays start at a random point, their
        // radius ramped over the first epoch.
        XCTAssertEqual(
            c.rrm.trainingSettings(linfEpsilon: 0.1).objective,
            .rrm(RRMLoss(xentWeight: 0.5, replays: 4, replayEpsilon: 0.1, replayStart: .random)))
        XCTAssertEqual(c.rrm.trainingSettings(linfEpsilon: 0.1).epsilonRampEpochs, 1)
        XCTAssertEqual(c.rrm.trainingSettings(linfEpsilon: nil).objective, .rrm(RRMLoss(xentWeight: 0.005)))
        XCTAssertEqual(c.rrm.trainingSettings(linfEpsilon: nil).epsilonRampEpochs, 0)
        // Every student is probed after every epoch: APGD-CE-50 on 512 training images, and the
        // best epoch's weights come back after a fall of more than 10 points.
        XCTAssertEqual([c.rrm.probeImages, c.rrm.probeIterations], [512, 50])
        XCTAssertEqual(c.rrm.probeRestore, 10)
        let probe = c.rrm.probe(train: try digits().train, norm: .linf, epsilon: 0.1)
        XCTAssertEqual(probe?.images.count, 512)
        XCTAssertEqual(probe?.apgd.iterations, 50)
        XCTAssertEqual(probe?.apgd.epsilon, 0.1)
        XCTAssertEqual(probe?.restoreBelowBest, 10)
        // From the clean batch rrmd does not ramp unless asked to.
        var clean = c.rrm
        clean.replayStart = .clean
        XCTAssertEqual(clean.trainingSettings(linfEpsilon: 0.1).epsilonRampEpochs, 0)
        XCTAssertEqual(c.evaluation.attacks, ["apgd-ce", "apgd-t"])
        XCTAssertEqual(c.evaluation.samples, 1000)
        XCTAssertEqual(c.evaluation.iterations, 100)
        XCTAssertEqual(c.evaluation.targetClasses, 9)
        XCTAssertEqual(c.evaluation.sweepSamples, 1000)
        XCTAssertEqual(c.evaluation.checkSamples, 500)
        XCTAssertNil(c.evaluation.epsilon)
        XCTAssertEqual(
            c.service,
            .init(
                rescanSeconds: 60, retryInitialSeconds: 30, retryMaxSeconds: 1800,
                maxTeacherBytes: 2_147_483_648))
        let relative = ServiceConfig.default(forCheckout: ".")
        XCTAssertEqual(relative.spool, FileManager.default.currentDirectoryPath + "/Spool")
    }

    func testEmptyFileMeansDefaultsWithTheSystemSpool() throws {
        XCTAssertEqual(try parse(""), ServiceConfig(spool: "/var/spool/rrmd", file: file))
        XCTAssertEqual(try parse("# only a comment\n\n[rrm]\n"), ServiceConfig(spool: "/var/spool/rrmd", file: file))
    }

    /// The documented file spells out exactly the built-in defaults, so the two cannot drift apart.
    func testShippedConfigurationIsTheDefaults() throws {
        let path = checkout + "/Config/rrmd.toml"
        let loaded = try ServiceConfig.load(path: path)
        XCTAssertEqual(loaded, ServiceConfig(spool: "/var/spool/rrmd", file: path))
    }

    /// The checkout's quick configuration (the README's main job) is valid and serves ./Spool.
    func testCheckoutConfigurationServesTheCheckoutSpool() throws {
        let loaded = try ServiceConfig.load(path: checkout + "/Config/checkout.toml")
        XCTAssertEqual(loaded.spool, URL(fileURLWithPath: checkout + "/Spool").standardizedFileURL.path)
        XCTAssertEqual(loaded.students.architectures, ["cnn-small", "mlp"])
        XCTAssertEqual(loaded.rrm.replays, 4)
        XCTAssertNotNil(loaded.rrm.limit)
    }

    func testFullFile() throws {
        let c = try parse(
            """
            spool = "/srv/rrmd-spool"
            threads = 2
            zstd_level = 19

            [datasets.cifar10]
            format = "cifar10"
            path = "/srv/data/cifar-10-batches-bin"

            [datasets.mnist]
            path = "/srv/data/mnist"

            [datasets.fashion-mnist]
            format = "auto"
            path = "/srv/data/fmnist"

            [students]
            architectures = ["mobilenetv2", "resnet18", "vgg11", "mlp"]
            width = 0.5

            [rrm]
            epochs = 48
            batch_size = 256
            learning_rate = 1
            xent_weight = 5e-5
            feature_loss = "l2"
            seed = 42
            limit = 2000
            replays = 3
            replay_start = "random"
            epsilon_ramp = 2
            probe_images = 0
            probe_iterations = 20
            probe_restore = 5

            [evaluation]
            attacks = ["pgd", "fgsm"]
            samples = 0
            iterations = 50
            target_classes = 3
            sweep_samples = 0
            check_samples = 100
            epsilon = "8/255"

            [service]
            rescan_seconds = 5
            retry_initial_seconds = 1
            retry_max_seconds = 1
            max_teacher_bytes = 1048576
            """)
        XCTAssertEqual(c.file, file)
        XCTAssertEqual(c.spool, "/srv/rrmd-spool")
        XCTAssertEqual(c.threads, 2)
        XCTAssertEqual(c.zstdLevel, 19)
        XCTAssertEqual(
            c.datasets,
            [
                "cifar10": .init(format: .cifar10, path: "/srv/data/cifar-10-batches-bin"),
                "mnist": .init(format: .idx, path: "/srv/data/mnist"),
                "fashion-mnist": .init(format: .idx, path: "/srv/data/fmnist"),
            ])
        XCTAssertEqual(c.students, .init(architectures: ["mobilenetv2", "resnet18", "vgg11", "mlp"], width: 0.5))
        XCTAssertEqual(
            c.rrm,
            .init(
                epochs: 48, batchSize: 256, learningRate: 1, xentWeight: 5e-5, featureLoss: .relativeL2,
                seed: 42, limit: 2000, replays: 3, replayStart: .random, epsilonRamp: 2, probeImages: 0,
                probeIterations: 20, probeRestore: 5))
        XCTAssertNil(c.rrm.probe(train: try digits().train, norm: .linf, epsilon: 0.1), "probe_images = 0: no probe")
        XCTAssertEqual(
            c.evaluation,
            .init(
                attacks: ["pgd", "fgsm"], samples: nil, iterations: 50, targetClasses: 3,
                sweepSamples: 0, checkSamples: 100, epsilon: "8/255"))
        XCTAssertEqual(c.evaluation.epsilonValue!, 8.0 / 255, accuracy: 1e-15)
        XCTAssertEqual(
            c.service, .init(rescanSeconds: 5, retryInitialSeconds: 1, retryMaxSeconds: 1, maxTeacherBytes: 1 << 20))

        let training = c.rrm.trainingSettings(linfEpsilon: 0.1)
        XCTAssertEqual(training.epochs, 48)
        XCTAssertEqual(training.batchSize, 256)
        XCTAssertEqual(training.learningRate, 1)
        XCTAssertEqual(training.seed, 42)
        XCTAssertEqual(
            training.objective,
            .rrm(
                RRMLoss(
                    xentWeight: 5e-5, featureLoss: .relativeL2, replays: 3, replayEpsilon: 0.1,
                    replayStart: .random)))
        XCTAssertEqual(training.epsilonRampEpochs, 2)
        XCTAssertNil(training.problem())
        // Replays perturb in an L-inf ball; an L2 teacher's students get the paper's single step.
        XCTAssertEqual(
            c.rrm.trainingSettings(linfEpsilon: nil).objective,
            .rrm(RRMLoss(xentWeight: 5e-5, featureLoss: .relativeL2)))
        XCTAssertEqual(c.rrm.trainingSettings(linfEpsilon: nil).epsilonRampEpochs, 0, "no replays, nothing to ramp")

        let robustness = c.evaluation.robustnessSettings(
            norm: .linf, teacherEpsilon: 0.1, teacherEpsilonText: "0.1", seed: 3)
        XCTAssertEqual(robustness.epsilonText, "8/255")
        XCTAssertEqual(robustness.attacks, ["pgd", "fgsm"])
        XCTAssertNil(robustness.samples)
        XCTAssertEqual(robustness.seed, 3)
        XCTAssertNil(robustness.problem(numClasses: 10))
        let teachers = ServiceConfig(spool: "/s").evaluation.robustnessSettings(
            norm: .l2, teacherEpsilon: 0.5,
            teacherEpsilonText: "0.5", seed: 0)
        XCTAssertEqual(teachers.norm, .l2)
        XCTAssertEqual(teachers.epsilon, 0.5)
        XCTAssertEqual(teachers.samples, 1000)
    }

    func testRelativePathsResolveAgainstTheConfigDirectory() throws {
        let dir = NSTemporaryDirectory() + "rrmd-config-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/Config", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/Config/rrmd.toml"
        try """
        spool = "../Spool"
        [datasets.digits]
        path = "data/digits"
        """.write(toFile: path, atomically: true, encoding: .utf8)
        // Loaded from another working directory, through a relative path with a detour.
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        let c = try ServiceConfig.load(path: "Config/../Config/rrmd.toml")
        let real = URL(fileURLWithPath: dir).standardizedFileURL.path
        XCTAssertEqual(c.file, real + "/Config/rrmd.toml")
        XCTAssertEqual(c.spool, real + "/Spool")
        XCTAssertEqual(c.datasets["digits"], .init(format: .idx, path: real + "/Config/data/digits"))
        XCTAssertEqual(c.datasets["fashion-mnist"]?.path, "/usr/share/datasets/fashion-mnist", "defaults stay")
        XCTAssertEqual(try parse("spool = \"/a/b/../c/\"").spool, "/a/c")
    }

    func testUnknownKeysAreErrors() {
        let top = failure("thread = 2", .unknownKey)
        XCTAssertEqual(top?.key, "thread")
        XCTAssertTrue(top?.description.contains("did you mean 'threads'?") ?? false, "\(String(describing: top))")
        let inner = failure("[rrm]\nepoch = 5", .unknownKey)
        XCTAssertEqual(inner?.key, "rrm.epoch")
        XCTAssertTrue(
            inner?.description.contains("did you mean 'rrm.epochs'?") ?? false, "\(String(describing: inner))")
        XCTAssertTrue(inner?.description.contains("keys allowed in [rrm]: batch_size, epochs") ?? false)
        XCTAssertEqual(failure("[evaluation]\nqueries = 5000", .unknownKey)?.key, "evaluation.queries")
        XCTAssertEqual(failure("[datasets.imagenet]\npath = \"/x\"", .unknownKey)?.key, "datasets.imagenet")
        XCTAssertEqual(failure("[datasets.mnist]\npath = \"/x\"\ndir = \"/y\"", .unknownKey)?.key, "datasets.mnist.dir")
        XCTAssertEqual(failure("[server]\nrescan_seconds = 5", .unknownKey)?.key, "server")
    }

    func testWrongTypes() {
        let e = failure("[rrm]\nepochs = \"ten\"", .wrongType)
        XCTAssertEqual(e?.key, "rrm.epochs")
        XCTAssertEqual(e?.value, "\"ten\"")
        XCTAssertEqual(
            e?.description,
            "/etc/rrmd/rrmd.toml: rrm.epochs = \"ten\" has the wrong type; expected an integer in 1...1000, not a "
                + "string"
        )
        XCTAssertEqual(failure("threads = 1.5", .wrongType)?.key, "threads")
        XCTAssertEqual(failure("spool = 3", .wrongType)?.key, "spool")
        XCTAssertEqual(failure("rrm = 3", .wrongType)?.key, "rrm")
        XCTAssertEqual(failure("[students]\narchitectures = \"resnet20\"", .wrongType)?.key, "students.architectures")
        XCTAssertEqual(failure("[students]\narchitectures = [1, 2]", .wrongType)?.key, "students.architectures")
        XCTAssertEqual(failure("[students]\nwidth = \"wide\"", .wrongType)?.key, "students.width")
        XCTAssertEqual(failure("[evaluation]\nepsilon = true", .wrongType)?.key, "evaluation.epsilon")
        XCTAssertEqual(failure("[datasets]\nmnist = \"/x\"", .wrongType)?.key, "datasets.mnist")
    }

    func testValuesOutOfRange() {
        let e = failure("[rrm]\nepochs = 0", .outOfRange)
        XCTAssertEqual(
            e?.description, "/etc/rrmd/rrmd.toml: rrm.epochs = 0 is out of range; allowed: an integer in 1...1000")
        XCTAssertEqual(failure("threads = 257", .outOfRange)?.expected, "an integer in 0...256 (0: every core)")
        XCTAssertEqual(failure("threads = -1", .outOfRange)?.key, "threads")
        XCTAssertEqual(failure("zstd_level = 20", .outOfRange)?.key, "zstd_level")
        XCTAssertEqual(failure("[students]\nwidth = 0.1", .outOfRange)?.value, "0.1")
        XCTAssertEqual(failure("[students]\nwidth = 9", .outOfRange)?.expected, "a number in 0.125...8.0")
        XCTAssertEqual(failure("[rrm]\nbatch_size = 1", .outOfRange)?.key, "rrm.batch_size")
        XCTAssertEqual(failure("[rrm]\nlearning_rate = 0", .outOfRange)?.key, "rrm.learning_rate")
        XCTAssertEqual(failure("[rrm]\nlearning_rate = nan", .outOfRange)?.key, "rrm.learning_rate")
        XCTAssertEqual(failure("[rrm]\nxent_weight = -0.1", .outOfRange)?.key, "rrm.xent_weight")
        XCTAssertEqual(failure("[rrm]\nseed = -1", .outOfRange)?.key, "rrm.seed")
        XCTAssertEqual(failure("[rrm]\nlimit = 0", .outOfRange)?.key, "rrm.limit")
        XCTAssertEqual(failure("[rrm]\nreplays = 0", .outOfRange)?.expected, "an integer in 1...16")
        let ramp = failure("[rrm]\nepochs = 2\nepsilon_ramp = 3", .outOfRange)
        XCTAssertEqual(ramp?.key, "rrm.epsilon_ramp")
        XCTAssertTrue(ramp?.description.contains("epochs (2)") ?? false)
        XCTAssertEqual(failure("[rrm]\nreplay_start = \"noisy\"", .invalidValue)?.key, "rrm.replay_start")
        XCTAssertEqual(failure("[rrm]\nprobe_images = -1", .outOfRange)?.key, "rrm.probe_images")
        XCTAssertEqual(failure("[rrm]\nprobe_iterations = 0", .outOfRange)?.key, "rrm.probe_iterations")
        XCTAssertEqual(failure("[rrm]\nprobe_restore = 101", .outOfRange)?.key, "rrm.probe_restore")
        XCTAssertEqual(failure("[evaluation]\niterations = 0", .outOfRange)?.key, "evaluation.iterations")
        XCTAssertEqual(failure("[evaluation]\nsamples = -5", .outOfRange)?.key, "evaluation.samples")
        XCTAssertEqual(failure("[evaluation]\nepsilon = \"0\"", .outOfRange)?.key, "evaluation.epsilon")
        XCTAssertEqual(failure("[evaluation]\nepsilon = \"eight\"", .outOfRange)?.value, "\"eight\"")
        XCTAssertEqual(failure("[service]\nrescan_seconds = 0", .outOfRange)?.key, "service.rescan_seconds")
        XCTAssertEqual(failure("[service]\nmax_teacher_bytes = 1000", .outOfRange)?.key, "service.max_teacher_bytes")
        let retry = failure("[service]\nretry_initial_seconds = 60\nretry_max_seconds = 10", .outOfRange)
        XCTAssertEqual(retry?.key, "service.retry_max_seconds")
        XCTAssertTrue(retry?.description.contains("retry_initial_seconds (60)") ?? false)
    }

    func testInvalidValues() {
        let arch = failure("[students]\narchitectures = [\"resnet20\", \"resnet101\"]", .invalidValue)
        XCTAssertEqual(arch?.key, "students.architectures")
        XCTAssertEqual(arch?.value, "[\"resnet20\", \"resnet101\"]")
        XCTAssertTrue(
            arch?.description.contains(
                "mlp, cnn-small, resnet20, resnet18, vgg11, mobilenetv2, preactresnet18, "
                    + "resnet50, wideresnet-28-10 ('resnet101' is not one)")
                ?? false,
            "\(String(describing: arch))")
        // A wide ResNet of any depth 6n + 4 is an architecture; other depths are not.
        XCTAssertEqual(
            try? parse("[students]\narchitectures = [\"wideresnet-16-2\"]").students.architectures, ["wideresnet-16-2"])
        XCTAssertEqual(
            failure("[students]\narchitectures = [\"wideresnet-15-2\"]", .invalidValue)?.key, "students.architectures")
        XCTAssertTrue(
            failure("[students]\narchitectures = [\"mlp\", \"mlp\"]", .invalidValue)?.description.contains(
                "listed twice") ?? false)
        XCTAssertEqual(failure("[students]\narchitectures = []", .invalidValue)?.key, "students.architectures")
        XCTAssertEqual(failure("[rrm]\nfeature_loss = \"dot\"", .invalidValue)?.expected, "one of \"cosine\", \"l2\"")
        XCTAssertEqual(failure("[evaluation]\nattacks = [\"cw\"]", .invalidValue)?.key, "evaluation.attacks")
        XCTAssertEqual(
            failure("[datasets.mnist]\nformat = \"cifar10\"\npath = \"/x\"", .invalidValue)?.key,
            "datasets.mnist.format")
        XCTAssertEqual(
            failure("[datasets.mnist]\nformat = \"png\"\npath = \"/x\"", .invalidValue)?.key, "datasets.mnist.format")
        let missing = failure("[datasets.cifar10]\nformat = \"cifar10\"", .invalidValue)
        XCTAssertEqual(missing?.key, "datasets.cifar10.path")
        XCTAssertTrue(missing?.description.contains("required") ?? false)
        XCTAssertEqual(failure("spool = \"\"", .invalidValue)?.key, "spool")
    }

    /// `[datasets.NAME] format = "folder"`: any name outside the catalog, for images in class folders.
    func testImageFolderDatasets() throws {
        let config = try parse("[datasets.pets]\nformat = \"folder\"\npath = \"data/pets\"")
        XCTAssertEqual(config.datasets["pets"], .init(format: .folder, path: "/etc/rrmd/data/pets"))
        XCTAssertEqual(config.datasets["fashion-mnist"]?.format, .idx, "the catalog's defaults stay")
        let unknown = failure("[datasets.pets]\npath = \"/x\"", .unknownKey)
        XCTAssertEqual(unknown?.key, "datasets.pets")
        XCTAssertTrue(unknown?.description.contains("format = \"folder\"") ?? false, "\(String(describing: unknown))")
        XCTAssertEqual(
            failure("[datasets.mnist]\nformat = \"folder\"\npath = \"/x\"", .invalidValue)?.key, "datasets.mnist.format"
        )
        XCTAssertEqual(failure("[datasets.pets]\nformat = \"folder\"", .invalidValue)?.key, "datasets.pets.path")
        XCTAssertEqual(
            failure("[datasets.Pets]\nformat = \"folder\"\npath = \"/x\"", .invalidValue)?.key, "datasets.Pets.format")
    }

    func testSyntaxErrorsNameTheLine() {
        let e = failure("threads = 2\n[rrm\nepochs = 3", .syntax)
        XCTAssertTrue(e?.description.contains("line 2") ?? false, "\(String(describing: e))")
        XCTAssertNotNil(failure("threads = 2\nthreads = 3", .syntax), "a key given twice")
    }

    func testUnreadableFile() {
        XCTAssertThrowsError(try ServiceConfig.load(path: "/nonexistent/rrmd.toml")) { error in
            let e = error as? ServiceConfigError
            XCTAssertEqual(e?.kind, .unreadable)
            XCTAssertEqual(e?.file, "/nonexistent/rrmd.toml")
            XCTAssertTrue("\(error)".contains("no such file"), "\(error)")
        }
    }
}
