import ArgumentParser
import Checkpoint
import Data
import FileSystem
import Foundation
import Kernels
import ModelIO
import Pipeline
import Training

/// `rrmd teacher-classifier`: gives an already distilled student its teacher's classifier (what
/// `rrmd distill --classifier teacher` does at the end of training).
struct TeacherClassifierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teacher-classifier",
        abstract: "Give a distilled student its teacher's classifier, scaled onto the student's representation.",
        discussion: """
            RRM matches the student's representation to the teacher's by cosine; where the match is close, the \
            teacher's classifier reads the student's representation as it reads its own. This writes a copy of the \
            student whose classifier is the teacher's weight times the factor that best maps the student's \
            representation onto the teacher's (least squares on the first --fit-images training images) and the \
            teacher's bias, and prints the clean test accuracy of both classifiers. docs/rrm-study.md measures \
            when it pays.
            """)

    @Option(help: "The distilled student (.safetensors or .safetensors.zst).") var student: String
    @Option(help: "The teacher it was distilled from.") var teacher: String
    @Option(help: "Output checkpoint (.safetensors.zst compresses).") var out: String
    @Option(name: .customLong("data-dir"), help: "Directory holding the dataset files.") var dataDir: String?
    @Option(name: .customLong("fit-images"), help: "Training images the scale is fitted on.") var fitImages = 10_000
    @Option(help: "Compute threads (default: all cores).") var threads = 0
    @Flag(help: "Print a JSON summary on stdout.") var json = false

    func run() throws {
        Compute.configure(threads: threads)
        guard fitImages > 0 else { throw ValidationError("--fit-images must be at least 1") }
        let s = try ModelLoader.load(path: student, dataset: nil)
        let t = try ModelLoader.load(path: teacher, dataset: nil)
        let teacherSHA256 = try SHA256.hex(contentsOfFile: teacher)
        if let recorded = s.metadata.teacherSHA256, recorded != teacherSHA256 {
            throw CommandFailure(
                "\(student) was distilled from the teacher with SHA-256 \(recorded), not from \(teacher) "
                    + "(\(teacherSHA256)); its representation matches that teacher's only")
        }
        guard s.network.classifier.weight.value.shape == t.network.classifier.weight.value.shape else {
            throw CommandFailure(
                "\(student)'s classifier takes \(s.network.representationWidth) features and "
                    + "\(s.network.config.numClasses) classes, \(teacher)'s \(t.network.representationWidth) and "
                    + "\(t.network.config.numClasses): not a student of this teacher")
        }
        let data = try DatasetCatalog.loadAny(
            s.metadata.dataset, directory: dataDir, limit: nil, folderShape: s.network.config.inputShape)
        let own = evaluateAccuracy(s.network, on: data.test).accuracy
        let fit = TeacherClassifier.adopt(
            student: s.network, teacher: t.network, data: data.train, images: fitImages)
        let adopted = evaluateAccuracy(s.network, on: data.test).accuracy
        var metadata = s.metadata
        metadata.training = (metadata.training.map { $0 + "; " } ?? "") + fit.summary
        metadata.producer = RRMDVersion.producer
        try SafeTensors(s.network.stateTensors(), metadata: metadata.dictionary).write(
            toFile: out, compression: .forPath(out))
        let line = String(
            format: "%@; clean test accuracy %.2f%% with the student's own classifier, %.2f%% with the teacher's; "
                + "saved %@", fit.summary, 100 * own, 100 * adopted, out)
        if json {
            let object: [String: Any] = [
                "student": student, "teacher": teacher, "out": out, "scale": fit.scale, "mean_cosine": fit.meanCosine,
                "fit_images": fit.images, "own_test_accuracy": own, "teacher_classifier_test_accuracy": adopted,
            ]
            let encoded = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: encoded, as: UTF8.self))
            FileHandle.standardError.write(Data((line + "\n").utf8))
        } else {
            print(line)
        }
    }
}
