import ArgumentParser
import Checkpoint
import Kernels
import ModelIO
import TensorCore

/// `rrmd predict`: runs a model on an input batch so other tools can check rrmd's models.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract:
            "Run a model in inference mode on tensor `input` [N,C,H,W] (float32 in [0,1]) and write `logits` and "
                + "`representation`."
    )

    @Option(help: "Model checkpoint (.safetensors or .safetensors.zst).") var model: String
    @Option(help: "Safetensors file with a float32 tensor `input` [N,C,H,W].") var input: String
    @Option(help: "Output safetensors file.") var out: String
    @Option(help: "Dataset of a plain state_dict without rrm.* metadata.") var dataset: String?
    @Option(help: "Compute threads (default: all cores).") var threads = 0

    func run() throws {
        Compute.configure(threads: threads)
        let loaded = try ModelLoader.load(path: model, dataset: dataset)
        let x = try SafeTensors(contentsOfFile: input).float32("input")
        let expected = loaded.network.config.inputShape
        guard x.rank == 4, Array(x.shape.dropFirst()) == expected, x.dim(0) > 0 else {
            throw CommandFailure(
                "\(input): tensor 'input' has shape \(x.shape) but the model takes [N, "
                    + "\(expected.map(String.init).joined(separator: ", "))]"
            )
        }
        let values = x.array
        if let bad = values.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw CommandFailure(
                "\(input): input[\(bad)] = \(values[bad]) is outside [0, 1]; rrmd models take pixels in [0, 1] "
                    + "(normalisation is inside the model)"
            )
        }
        let (logits, representation) = loaded.network.forwardWithRepresentation(x, mode: .inference)
        try SafeTensors(
            [("logits", .float32(logits)), ("representation", .float32(representation))],
            metadata: ["model_arch": loaded.metadata.architecture, "producer": RRMDVersion.producer]
        )
        .write(toFile: out)
    }
}
