import Foundation
import TensorCore

/// What rrmd knows about one named dataset: where to look, which files, how to read them.
public struct DatasetSpec: Sendable {
    /// The name used on the command line and in checkpoint metadata.
    public let name: String
    /// Number of classes.
    public let numClasses: Int
    /// Whether random horizontal flips keep labels valid (see `Dataset.allowsHorizontalFlip`).
    public let allowsHorizontalFlip: Bool
    /// Directories searched after the caller's own, in order.
    public let defaultDirectories: [String]
    /// Files the directory must hold (IDX files may also carry a `.gz` suffix).
    public let files: [String]
    /// What to tell the user when the files are not found.
    public let hint: String
    let layout: Layout

    /// `[C, H, W]` of every image of the dataset (the formats fix it: IDX sets here are 28x28
    /// MNIST-style images except the 8x8 digits; CIFAR-10 is 3x32x32).
    public var imageShape: [Int] {
        switch layout {
        case .idx: return [1, 28, 28]
        case .idxSplit: return [1, 8, 8]
        case .cifar10, .cifar100: return [3, 32, 32]
        }
    }

    /// A readable name per class label, for reports (the datasets' published label names).
    public var classNames: [String] {
        switch name {
        case "fashion-mnist":
            return [
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot",
            ]
        case "cifar10":
            return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        default:
            return (0..<numClasses).map(String.init)
        }
    }

    /// How the files become a train/test pair.
    enum Layout: Sendable {
        /// Separate IDX files per split; pixel bytes divided by `maxValue`.
        case idx(trainImages: String, trainLabels: String, testImages: String, testLabels: String, maxValue: Int)
        /// One IDX pair split by position: the last `testCount` of `total` samples are the test set.
        case idxSplit(images: String, labels: String, maxValue: Int, total: Int, testCount: Int)
        /// CIFAR-10 binary batches.
        case cifar10
        /// CIFAR-100's binary train.bin/test.bin, with fine labels (or the 20 coarse ones).
        case cifar100(coarse: Bool)
    }
}

/// Resolves dataset names and directories to loaded (train, test) pairs.
///
/// Directory rule, kept simple on purpose: an explicit `directory` is the only place looked at;
/// otherwise the caller's `searchDirectories` are tried in order, then the dataset's built-in
/// defaults (only Fashion-MNIST has one, where its Debian package installs it). The first
/// directory that holds all the files wins.
public enum DatasetCatalog {
    /// MNIST's standard file names, shared by Fashion-MNIST.
    static let mnistFiles = (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
    )

    static func mnistHint(_ prefix: String) -> String {
        prefix + "pass --data-dir DIR where DIR holds \(mnistFiles.0), \(mnistFiles.1), \(mnistFiles.2) and "
            + "\(mnistFiles.3) (each plain or gzipped, optionally named .gz)."
    }

    /// Every dataset rrmd can load.
    public static let all: [DatasetSpec] = [
        DatasetSpec(
            name: "fashion-mnist", numClasses: 10, allowsHorizontalFlip: true,
            defaultDirectories: ["/usr/share/datasets/fashion-mnist"],
            files: [mnistFiles.0, mnistFiles.1, mnistFiles.2, mnistFiles.3],
            hint: mnistHint(
                "Install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or "),
            layout: .idx(
                trainImages: mnistFiles.0, trainLabels: mnistFiles.1,
                testImages: mnistFiles.2, testLabels: mnistFiles.3, maxValue: 255)),
        DatasetSpec(
            name: "mnist", numClasses: 10, allowsHorizontalFlip: false,
            defaultDirectories: [],
            files: [mnistFiles.0, mnistFiles.1, mnistFiles.2, mnistFiles.3],
            hint: mnistHint("Download MNIST and "),
            layout: .idx(
                trainImages: mnistFiles.0, trainLabels: mnistFiles.1,
                testImages: mnistFiles.2, testLabels: mnistFiles.3, maxValue: 255)),
        // UCI digits has no official split; the last 297 of the 1,797 images are the test set,
        // the first 1,500 the training set, so every run and machine uses the same split.
        DatasetSpec(
            name: "digits", numClasses: 10, allowsHorizontalFlip: false,
            defaultDirectories: [],
            files: ["digits-images-idx3-ubyte", "digits-labels-idx1-ubyte"],
            hint: "Pass --data-dir DIR where DIR holds digits-images-idx3-ubyte and digits-labels-idx1-ubyte "
                + "(the UCI 8x8 digits as IDX, pixel values 0..16; a copy is in shared/data/digits).",
            layout: .idxSplit(
                images: "digits-images-idx3-ubyte", labels: "digits-labels-idx1-ubyte",
                maxValue: 16, total: 1797, testCount: 297)),
        DatasetSpec(
            name: "cifar10", numClasses: 10, allowsHorizontalFlip: true,
            defaultDirectories: [],
            files: CIFAR10.trainFiles + CIFAR10.testFiles,
            hint: "Download the CIFAR-10 binary version (cifar-10-binary.tar.gz, "
                + "https://www.cs.toronto.edu/~kriz/cifar.html), extract it and pass --data-dir pointing at "
                + "its cifar-10-batches-bin directory (data_batch_1.bin … data_batch_5.bin, test_batch.bin).",
            layout: .cifar10),
        DatasetSpec(
            name: "cifar100", numClasses: 100, allowsHorizontalFlip: true,
            defaultDirectories: [],
            files: CIFAR100.trainFiles + CIFAR100.testFiles,
            hint: "Download the CIFAR-100 binary version (cifar-100-binary.tar.gz, "
                + "https://www.cs.toronto.edu/~kriz/cifar.html), extract it and pass --data-dir pointing at "
                + "its cifar-100-binary directory (train.bin, test.bin).",
            layout: .cifar100(coarse: false)),
        DatasetSpec(
            name: "cifar100-coarse", numClasses: 20, allowsHorizontalFlip: true,
            defaultDirectories: [],
            files: CIFAR100.trainFiles + CIFAR100.testFiles,
            hint: "CIFAR-100 with its 20 superclass labels: pass --data-dir pointing at the cifar-100-binary "
                + "directory (train.bin, test.bin) of cifar-100-binary.tar.gz.",
            layout: .cifar100(coarse: true)),
    ]

    /// The names of `all`, for help texts and errors.
    public static var knownNames: [String] { all.map(\.name) }

    /// The spec called `name` (case-insensitive; "fashion_mnist", "cifar-10" are accepted too).
    public static func spec(named name: String) throws -> DatasetSpec {
        let key = name.lowercased().replacingOccurrences(of: "_", with: "-")
        let aliases = ["cifar-10": "cifar10", "fashionmnist": "fashion-mnist", "cifar-100": "cifar100"]
        let canonical = aliases[key] ?? key
        guard let spec = all.first(where: { $0.name == canonical }) else {
            throw DataError.unknownDataset(name: name, known: knownNames)
        }
        return spec
    }

    /// The directory the dataset would be loaded from (see the type's directory rule).
    public static func locate(
        _ name: String, directory: String? = nil, searchDirectories: [String] = []
    ) throws -> String {
        let spec = try spec(named: name)
        if let directory {
            guard isDirectory(directory) else {
                throw DataError.datasetNotFound(name: spec.name, searched: [directory], hint: spec.hint)
            }
            if let missing = spec.files.first(where: { resolveFile($0, in: directory) == nil }) {
                throw DataError.fileNotFound(path: join(directory, missing), hint: spec.hint)
            }
            return directory
        }
        let candidates = searchDirectories + spec.defaultDirectories
        for dir in candidates where spec.files.allSatisfy({ resolveFile($0, in: dir) != nil }) {
            return dir
        }
        throw DataError.datasetNotFound(name: spec.name, searched: candidates, hint: spec.hint)
    }

    /// Loads the (train, test) pair of `name`; `limit` keeps the first `limit` samples of each
    /// split, for quick runs and tests.
    public static func load(
        _ name: String, directory: String? = nil, searchDirectories: [String] = [], limit: Int? = nil
    ) throws -> (train: Dataset, test: Dataset) {
        let spec = try spec(named: name)
        let dir = try locate(spec.name, directory: directory, searchDirectories: searchDirectories)
        func file(_ base: String) throws -> String {
            guard let path = resolveFile(base, in: dir) else {  // vanished since `locate`
                throw DataError.fileNotFound(path: join(dir, base), hint: spec.hint)
            }
            return path
        }
        func make(_ images: Tensor, _ labels: [Int32]) -> Dataset {
            Dataset(
                name: spec.name, images: images, labels: labels, numClasses: spec.numClasses,
                allowsHorizontalFlip: spec.allowsHorizontalFlip)
        }
        func readPair(_ imagesName: String, _ labelsName: String, maxValue: Int, limit: Int?) throws -> Dataset {
            let (ip, lp) = (try file(imagesName), try file(labelsName))
            let images = try IDX.readImages(path: ip, maxValue: maxValue, limit: limit, hint: spec.hint)
            let labels = try IDX.readLabels(path: lp, numClasses: spec.numClasses, limit: limit, hint: spec.hint)
            if images.shape[0] != labels.count {
                throw DataError.countMismatch(
                    imagesPath: ip, images: images.shape[0], labelsPath: lp, labels: labels.count)
            }
            return make(images, labels)
        }

        switch spec.layout {
        case .idx(let trainImages, let trainLabels, let testImages, let testLabels, let maxValue):
            return (
                try readPair(trainImages, trainLabels, maxValue: maxValue, limit: limit),
                try readPair(testImages, testLabels, maxValue: maxValue, limit: limit)
            )
        case .idxSplit(let images, let labels, let maxValue, let total, let testCount):
            let whole = try readPair(images, labels, maxValue: maxValue, limit: nil)
            if whole.count != total {
                throw DataError.wrongShape(
                    path: try file(images), found: whole.images.shape,
                    expected: "\(total) images (the \(spec.name) set, split \(total - testCount)/\(testCount))")
            }
            let split = total - testCount
            return (whole.slice(0..<split).prefix(limit), whole.slice(split..<total).prefix(limit))
        case .cifar10:
            let train = try CIFAR10.read(paths: try CIFAR10.trainFiles.map(file), limit: limit, hint: spec.hint)
            let test = try CIFAR10.read(paths: try CIFAR10.testFiles.map(file), limit: limit, hint: spec.hint)
            return (make(train.images, train.labels), make(test.images, test.labels))
        case .cifar100(let coarse):
            let train = try CIFAR100.read(
                paths: try CIFAR100.trainFiles.map(file), coarse: coarse, limit: limit, hint: spec.hint)
            let test = try CIFAR100.read(
                paths: try CIFAR100.testFiles.map(file), coarse: coarse, limit: limit, hint: spec.hint)
            return (make(train.images, train.labels), make(test.images, test.labels))
        }
    }

    /// Loads `name` from the catalog or, for a name the catalog does not know, from the image
    /// folder at `directory` (`ImageFolder`) with images of `folderShape` ([C, H, W]: the
    /// teacher's input shape, or `rrmd train --image-size`). The dataset's name is then the
    /// caller's own, as in `[datasets.NAME] format = "folder"`.
    public static func loadAny(
        _ name: String, directory: String?, limit: Int? = nil, folderShape: [Int]?, testFraction: Double = 0.2
    ) throws -> (train: Dataset, test: Dataset) {
        if (try? spec(named: name)) != nil { return try load(name, directory: directory, limit: limit) }
        guard let directory, let shape = folderShape, shape.count == 3 else {
            throw DataError.unknownDataset(name: name, known: knownNames + ["an image folder given with --data-dir"])
        }
        let data = try ImageFolder.load(
            root: directory, name: name, channels: shape[0], height: shape[1], width: shape[2],
            testFraction: testFraction, limit: limit)
        return (data.train, data.test)
    }

    /// `base` or `base.gz` inside `dir`, whichever exists (plain first: it loads faster).
    static func resolveFile(_ base: String, in dir: String) -> String? {
        for name in [base, base + ".gz"] {
            let path = join(dir, name)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
                return path
            }
        }
        return nil
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    static func join(_ dir: String, _ name: String) -> String {
        dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }
}
