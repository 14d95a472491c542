import Checkpoint
import Data
import Models
import TensorCore

/// A network restored from a checkpoint, with what the file said about it.
public struct LoadedModel {
    /// The network, in the state the file holds.
    public var network: Network
    /// The file's metadata (inferred for a plain state_dict).
    public var metadata: ModelMetadata
    /// True when the architecture was recognised from tensor names and shapes because the file
    /// had no rrmd metadata.
    public var inferred: Bool
}

/// Why a checkpoint could not become a network.
public enum ModelLoadError: Error, CustomStringConvertible, Equatable {
    /// A plain state_dict was given without naming its dataset.
    case datasetNeeded(source: String)
    /// The metadata names another dataset than the caller.
    case datasetMismatch(source: String, inFile: String, requested: String)
    /// No registry architecture, or more than one, fits a plain state_dict.
    case unidentified(source: String, candidates: [String])
    /// Weights are NaN or infinite.
    case nonFinite(source: String, tensors: [String])
    /// The metadata describes a network with more parameters than the file holds values: damaged
    /// or hostile metadata, refused before any of that network is allocated.
    case metadataDisagrees(source: String, architecture: String, parameters: Int, values: Int)

    public var description: String {
        switch self {
        case .datasetNeeded(let source):
            return
                "\(source): the file has no rrm.* metadata, so its dataset is unknown; name it (--dataset) or add "
                + "rrm.dataset, rrm.arch, rrm.num_classes, rrm.input_shape, rrm.mean and rrm.std to __metadata__ "
                + "(docs/checkpoints.md)"
        case .datasetMismatch(let source, let inFile, let requested):
            return
                "\(source): made for dataset '\(inFile)' but '\(requested)' was requested; use a checkpoint for "
                + "\(requested) or drop the dataset option"
        case .unidentified(let source, let candidates):
            let which =
                candidates.isEmpty
                ? "no registry architecture (\(ModelRegistry.names.joined(separator: ", "))) has exactly these tensor "
                    + "names and shapes"
                : "several architectures fit: \(candidates.joined(separator: ", "))"
            return
                "\(source): the file has no rrm.* metadata and \(which); add rrm.arch, rrm.width, rrm.dataset, "
                + "rrm.num_classes, rrm.input_shape, rrm.mean and rrm.std (and rrm.projection for a student with "
                + "a projection head) to __metadata__ (docs/checkpoints.md)"
        case .metadataDisagrees(let source, let architecture, let parameters, let values):
            return
                "\(source): its rrm.* metadata describes \(architecture) with \(parameters) parameters, but the file "
                + "holds only \(values) values; the metadata does not belong to these weights (fix rrm.arch, "
                + "rrm.width, rrm.input_shape, rrm.num_classes or rrm.projection, docs/checkpoints.md)"
        case .nonFinite(let source, let tensors):
            return
                "\(source): NaN or infinite weights in "
                + "\(tensors.prefix(5).joined(separator: ", "))\(tensors.count > 5 ? ", …" : ""); the model "
                + "diverged or the file is damaged, so export it again from a healthy run"
        }
    }
}

/// Turns checkpoint files into networks: by metadata when present, otherwise by recognising the
/// architecture from tensor names and shapes for a named dataset.
public enum ModelLoader {
    /// Reads `path` (plain or zstd-compressed safetensors) and restores the network.
    public static func load(path: String, dataset: String? = nil, limits: ReadLimits = .standard) throws -> LoadedModel
    {
        try load(archive: SafeTensors(contentsOfFile: path, limits: limits), source: path, dataset: dataset)
    }

    /// Restores the network held by `archive`; `source` names it in errors.
    public static func load(archive: SafeTensors, source: String, dataset: String?) throws -> LoadedModel {
        let bad = archive.nonFiniteTensorNames()
        if !bad.isEmpty { throw ModelLoadError.nonFinite(source: source, tensors: bad) }
        if ModelMetadata.isPresent(in: archive.metadata) {
            let metadata = try ModelMetadata(archive.metadata)
            if let dataset, dataset != metadata.dataset {
                throw ModelLoadError.datasetMismatch(source: source, inFile: metadata.dataset, requested: dataset)
            }
            // Counted before building: metadata must not make us allocate more than the file holds.
            let parameters = try ModelRegistry.parameterCount(metadata.architecture, config: metadata.config)
            let values = archive.entries.reduce(0) { $0 + $1.tensor.elementCount }
            if parameters > values {
                throw ModelLoadError.metadataDisagrees(
                    source: source, architecture: metadata.architecture, parameters: parameters, values: values)
            }
            let network = try ModelRegistry.make(metadata.architecture, config: metadata.config, seed: 0)
            try network.loadState(from: archive)
            return LoadedModel(network: network, metadata: metadata, inferred: false)
        }
        guard let dataset else { throw ModelLoadError.datasetNeeded(source: source) }
        let spec = try DatasetCatalog.spec(named: dataset)
        var archive = archive
        var fits = candidates(for: archive, spec: spec)
        if fits.isEmpty, let mapped = publicNamesMapped(archive) {
            let mappedFits = candidates(for: mapped, spec: spec)
            if !mappedFits.isEmpty { (archive, fits) = (mapped, mappedFits) }
        }
        guard fits.count == 1, let network = fits.first else {
            throw ModelLoadError.unidentified(source: source, candidates: fits.map(\.architecture))
        }
        try network.loadState(from: archive)
        let metadata = ModelMetadata(
            model: network, dataset: spec.name, trainedBy: "external", seed: nil, producer: nil)
        return LoadedModel(network: network, metadata: metadata, inferred: true)
    }

    /// `archive` with the public definitions' names that differ from rrmd's mapped to rrmd's, or
    /// nil when none applies. The one mapping: RobustBench's (and kuangliu's) CIFAR `ResNet18`
    /// names its classifier `linear`, rrmd's `resnet18` `fc` (rrmd's zoo architectures
    /// `preactresnet18` and `resnet50` keep `linear`, so this is tried only when nothing fits as is).
    static func publicNamesMapped(_ archive: SafeTensors) -> SafeTensors? {
        let names = Set(archive.names)
        guard names.contains("linear.weight"), !names.contains("fc.weight"), names.contains("layer4.1.conv2.weight")
        else { return nil }
        let renamed = archive.entries.map { entry in
            (
                name: entry.name.hasPrefix("linear.") ? "fc." + entry.name.dropFirst("linear.".count) : entry.name,
                tensor: entry.tensor
            )
        }
        return SafeTensors(renamed, metadata: archive.metadata)
    }

    /// Per architecture: a tensor only it has (so only plausible architectures are built), its
    /// first tensor and that tensor's unscaled width, from which the width multiplier is read.
    static let widthProbes: [(arch: String, signature: String, tensor: String, base: Int)] = [
        ("mlp", "fc2.weight", "fc1.weight", 256), ("cnn-small", "fc1.weight", "conv1.weight", 32),
        ("resnet20", "layers.8.conv2.weight", "conv1.weight", 16),
        ("resnet18", "layer4.1.conv2.weight", "conv1.weight", 64),
        ("vgg11", "features.0.weight", "features.0.weight", 64),
        ("mobilenetv2", "layers.16.conv3.weight", "conv1.weight", 32),
        ("preactresnet18", "layer4.1.bn2.weight", "conv1.weight", 64),
        ("resnet50", "layer4.2.conv3.weight", "conv1.weight", 64),
    ]

    /// The wide ResNet a state dict describes, read from its block count and widths: depth from
    /// the blocks of `block1.layer`, widen factor from `block3`'s width over the stem's.
    static func wideResNetProbe(
        _ shapes: [String: [Int]]
    ) -> (arch: String, signature: String, tensor: String, base: Int)? {
        guard let stem = shapes["conv1.weight"]?.first, stem > 0,
            let last = shapes["block3.layer.0.conv1.weight"]?.first
        else { return nil }
        var blocks = 0
        while shapes["block1.layer.\(blocks).conv1.weight"] != nil { blocks += 1 }
        // 64·widen·m over 16·m, with the width multiplier m rounded into both.
        let widen = Int((Double(last) / Double(stem) / 4).rounded())
        let arch = "wideresnet-\(6 * blocks + 4)-\(widen)"
        guard blocks > 0, ModelRegistry.wideResNetShape(arch) != nil else { return nil }
        return (arch, "block3.layer.0.conv1.weight", "conv1.weight", 16)
    }

    /// Networks (identity input normalisation) whose state names and shapes equal the archive's.
    static func candidates(for archive: SafeTensors, spec: DatasetSpec) -> [Network] {
        let shapes = Dictionary(uniqueKeysWithValues: archive.entries.map { ($0.name, $0.tensor.shape) })
        // A student's projection head (`projection.weight`, [P, D]) is the same for every
        // architecture; P is its output width. A malformed one matches no architecture.
        var projection: Int?
        if let p = shapes["projection.weight"] {
            guard p.count == 2, p[0] > 0 else { return [] }
            projection = p[0]
        }
        let values = archive.entries.reduce(0) { $0 + $1.tensor.elementCount }
        var fits: [Network] = []
        for probe in widthProbes + [wideResNetProbe(shapes)].compactMap({ $0 }) {
            guard shapes[probe.signature] != nil, let first = shapes[probe.tensor]?.first, first > 0 else { continue }
            let config = ModelConfig(
                channels: spec.imageShape[0], height: spec.imageShape[1], width: spec.imageShape[2],
                numClasses: spec.numClasses, widthMultiplier: Double(first) / Double(probe.base),
                projection: projection, projectionBias: projection != nil && shapes["projection.bias"] != nil)
            // Only an architecture the file's values can fill is built (a first tensor can claim any width).
            guard let parameters = try? ModelRegistry.parameterCount(probe.arch, config: config), parameters <= values,
                let network = try? ModelRegistry.make(probe.arch, config: config, seed: 0)
            else { continue }
            let expected = network.stateTensors()
            if expected.count == shapes.count && expected.allSatisfy({ shapes[$0.name] == $0.tensor.shape }) {
                fits.append(network)
            }
        }
        return fits
    }
}
