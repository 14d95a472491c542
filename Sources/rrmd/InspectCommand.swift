import ArgumentParser
import Checkpoint
import Foundation
import ModelIO

/// `rrmd inspect`: what a checkpoint holds and whether rrmd can use it.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a checkpoint's metadata, tensors and sizes, and validate it (exit 1 if invalid).")

    @Argument(help: "A .safetensors or .safetensors.zst file.") var file: String
    @Option(help: "Dataset of a plain state_dict without rrm.* metadata.") var dataset: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        let archive: SafeTensors
        do { archive = try SafeTensors(contentsOfFile: file) } catch {
            throw CommandFailure("invalid checkpoint: \(error)")
        }
        let uncompressed = archive.serialized().count
        var problem: String?
        var loaded: LoadedModel?
        do { loaded = try ModelLoader.load(archive: archive, source: file, dataset: dataset) } catch {
            problem = "\(error)"
        }
        let parameters = loaded?.network.parameterCount
        if json {
            var object: [String: Any] = [
                "file": file, "file_bytes": fileSize, "uncompressed_bytes": uncompressed, "metadata": archive.metadata,
                "tensors": archive.entries.map {
                    [
                        "name": $0.name, "dtype": $0.tensor.dtype.rawValue, "shape": $0.tensor.shape,
                        "bytes": $0.tensor.byteCount,
                    ]
                },
                "valid": problem == nil,
            ]
            object["error"] = problem
            object["parameters"] = parameters
            object["architecture"] = loaded?.metadata.architecture
            object["inferred"] = loaded?.inferred
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("file        \(file)")
            print(
                "size        \(fileSize) bytes on disk, \(uncompressed) uncompressed "
                    + "(\(String(format: "%.3f", Double(uncompressed) / Double(max(fileSize, 1))))x)"
            )
            for key in archive.metadata.keys.sorted() { print("metadata    \(key) = \(archive.metadata[key]!)") }
            let nameWidth = min(48, archive.names.map(\.count).max() ?? 4)
            for (name, t) in archive.entries {
                print(
                    "tensor      \(name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  "
                        + "\(t.dtype.rawValue)  \(t.shape)  \(t.byteCount) bytes"
                )
            }
            if let loaded {
                let how = loaded.inferred ? " (recognised from tensor names; no rrm.* metadata)" : ""
                print("model       \(loaded.metadata.architecture)\(how), \(parameters ?? 0) parameters")
                print("valid       yes")
            }
        }
        if let problem { throw CommandFailure("invalid checkpoint: \(problem)") }
    }
}

/// A failure reported as one line on stderr with exit code 1 (no usage text).
struct CommandFailure: Error, CustomStringConvertible {
    /// What went wrong and what to do.
    let description: String
    init(_ description: String) { self.description = description }
}
