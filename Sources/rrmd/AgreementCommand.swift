import ArgumentParser
import Attacks
import Data
import Foundation
import Kernels
import ModelIO
import Models
import NN
import TensorCore

/// `rrmd agreement`: how closely a distilled student follows its teacher, on clean test images
/// and on each one's adversarial images. It tells apart the two ways a student can be less robust
/// than its teacher: it copies the teacher near the data but not in the directions an attacker
/// takes (its own adversarial images leave the teacher correct and the representations apart),
/// or it copies the teacher's weaknesses (they fool both).
struct AgreementCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agreement",
        abstract: "Compare a student with its teacher on clean images and on each one's APGD-CE adversarial images.")

    @Option(help: "Student checkpoint.") var student: String
    @Option(help: "Teacher checkpoint.") var teacher: String
    @Option(help: "Dataset (default: the teacher's).") var dataset: String?
    @Option(name: .customLong("data-dir"), help: "Directory holding the dataset files.") var dataDir: String?
    @Option(help: "Attack radius (default: the teacher's threat model).") var epsilon: String?
    @Option(help: "First N test images.") var samples = 500
    @Option(help: "APGD-CE iterations.") var iterations = 100
    @Option(help: "Compute threads (default: all cores).") var threads = 0
    @Flag(help: "Print JSON instead of lines.") var json = false

    /// Student and teacher measured on one set of images.
    struct Row: Encodable {
        var images: String
        var studentAccuracy, teacherAccuracy, agreement, meanCosine: Double
        enum CodingKeys: String, CodingKey {
            case images
            case studentAccuracy = "student_accuracy"
            case teacherAccuracy = "teacher_accuracy"
            case agreement
            case meanCosine = "mean_cosine"
        }
    }

    func run() throws {
        Compute.configure(threads: threads)
        let s = try ModelLoader.load(path: student, dataset: dataset)
        let t = try ModelLoader.load(path: teacher, dataset: dataset)
        guard s.network.representationWidth == t.network.representationWidth else {
            throw CommandFailure(
                "the student's representation (\(s.network.representationWidth)) and the teacher's "
                    + "(\(t.network.representationWidth)) differ in width"
            )
        }
        let data = try DatasetCatalog.loadAny(
            dataset ?? t.metadata.dataset, directory: dataDir, folderShape: t.network.config.inputShape
        ).test.prefix(samples)
        let epsText =
            epsilon ?? ThreatModel(t.metadata.threatModel).flatMap { $0.norm == nil ? nil : "\($0.epsilon)" } ?? "8/255"
        guard let eps = parseEpsilon(epsText), eps > 0 else {
            throw ValidationError("--epsilon '\(epsText)' is not a positive number or fraction")
        }

        var rows: [Row] = []
        for (name, attacked) in [
            ("clean", nil), ("student's adversarial", s.network), ("teacher's adversarial", t.network),
        ] as [(String, Network?)] {
            var sc = 0
            var tc = 0
            var agree = 0
            var cosSum = 0.0
            var start = 0
            var batch: UInt64 = 0
            while start < data.count {
                let range = start..<min(start + 200, data.count)
                var x = data.images.gather(rows: range)  // [B, C, H, W]
                let labels = Array(data.labels[range])
                if let attacked {
                    var rng = RNG(seed: 0).fork(batch)
                    x =
                        APGD.attack(
                            attacked, x: x, labels: labels,
                            config: APGDConfig(
                                norm: .linf, epsilon: Float(eps), iterations: iterations,
                                restarts: 1, loss: .crossEntropy), rng: &rng
                        ).adversarial
                }
                let so = s.network.forwardWithRepresentation(x, mode: .inference)
                let to = t.network.forwardWithRepresentation(x, mode: .inference)
                let sp = argmaxRows(so.logits)
                let tp = argmaxRows(to.logits)
                for j in 0..<labels.count {
                    if sp[j] == labels[j] { sc += 1 }
                    if tp[j] == labels[j] { tc += 1 }
                    if sp[j] == tp[j] { agree += 1 }
                }
                cosSum +=
                    Double(labels.count)
                    * (1
                        - Double(
                            FeatureLoss.cosine.evaluate(student: so.representation, teacher: to.representation).value))
                start = range.upperBound
                batch += 1
            }
            let n = Double(data.count)
            rows.append(
                Row(
                    images: name, studentAccuracy: Double(sc) / n, teacherAccuracy: Double(tc) / n,
                    agreement: Double(agree) / n, meanCosine: cosSum / n))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else {
            print(
                "images (first \(data.count) test images, APGD-CE linf \(epsText), \(iterations) iterations) | "
                    + "student acc | teacher acc | same prediction | mean cos(z_s, z_t)"
            )
            for r in rows {
                print(
                    String(
                        format: "%@ | %.1f%% | %.1f%% | %.1f%% | %.3f", r.images, 100 * r.studentAccuracy,
                        100 * r.teacherAccuracy, 100 * r.agreement, r.meanCosine))
            }
        }
    }
}
