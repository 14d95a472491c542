import Checkpoint
import Data
import Foundation
import ModelIO
import Models
import NN
import Pipeline
import TensorCore
import TestSupport
import Training
import XCTest

/// A student that takes its teacher's classifier: the fitted scale is the least-squares factor,
/// a student whose representation is a multiple of the teacher's then decides as the teacher
/// does, and a distillation with `classifier: .teacher` saves and reports the adopted student.
final class TeacherClassifierTests: XCTestCase {
    private func representations(_ net: Network, _ x: Tensor) -> [Float] {
        net.forwardWithRepresentation(x, mode: .inference).representation.array
    }

    /// Copies every state entry the two networks share by name (the body), leaving the
    /// projection and classifier as they are.
    private func copyBody(from source: Network, into target: Network) {
        var entries: [String: StateEntry] = [:]
        source.visitState(prefix: "") { entries[$0] = $1 }
        target.visitState(prefix: "") { name, entry in
            guard !name.hasPrefix("projection."), !name.hasPrefix(target.classifierName + "."),
                let from = entries[name]
            else { return }
            switch (entry, from) {
            case (.parameter(let p), .parameter(let q)): p.value = q.value
            case (.buffer(let b), .buffer(let c)): b.value = c.value
            case (.counter(let c), .counter(let d)): c.value = d.value
            default: XCTFail("\(name): different kinds of state")
            }
        }
    }

    /// The teacher's body behind a projection c·I: the representation is c times the teacher's,
    /// so the scale is 1/c, the cosine 1, and the adopted student's logits are the teacher's.
    func testAScaledCopyOfTheTeacherTakesTheTeachersLogits() throws {
        let (train, test) = try digits()
        let teacher = try digitsModel("cnn-small", train, seed: 3)
        var config = teacher.config
        config.projection = teacher.representationWidth
        let student = try ModelRegistry.make("cnn-small", config: config, seed: 9)
        copyBody(from: teacher, into: student)
        let c: Float = 2.5
        let p = teacher.representationWidth
        var identity = Tensor(shape: [p, p])
        identity.withUnsafeMutablePointer { ip in for i in 0..<p { ip[i * p + i] = c } }
        student.projection!.weight.value = identity
        let x = test.images.gather(rows: 0..<64)
        XCTAssertGreaterThan(
            zip(student.forward(x, mode: .inference).array, teacher.forward(x, mode: .inference).array)
                .map { abs($0 - $1) }.max()!, 0.01, "before: the student's own (random) classifier")

        let fit = TeacherClassifier.adopt(student: student, teacher: teacher, data: train, images: 300)
        XCTAssertEqual(fit.images, 300)
        XCTAssertEqual(fit.scale, 1 / Double(c), accuracy: 1e-6)
        XCTAssertEqual(fit.meanCosine, 1, accuracy: 1e-6)
        let s = student.forward(x, mode: .inference).array
        let t = teacher.forward(x, mode: .inference).array
        XCTAssertLessThan(zip(s, t).map { abs($0 - $1) }.max()!, 1e-4)
    }

    /// For an unrelated student the scale is sum <z, r> / sum <z, z>, computed here plainly, and
    /// the classifier becomes exactly that multiple of the teacher's weight, with its bias.
    func testTheScaleIsTheLeastSquaresFactor() throws {
        let (train, _) = try digits()
        let teacher = try digitsModel("cnn-small", train, seed: 3)
        let student = try Distiller.makeStudent("resnet20", width: 0.5, teacher: teacher, seed: 4)
        XCTAssertNotNil(student.projection, "resnet20 x0.5 is narrower than cnn-small: it needs a projection")
        let n = 130
        let x = train.images.gather(rows: 0..<n)
        let z = representations(student, x)
        let r = representations(teacher, x)
        var zr = 0.0
        var zz = 0.0
        for i in 0..<z.count {
            zr += Double(z[i]) * Double(r[i])
            zz += Double(z[i]) * Double(z[i])
        }
        let fit = TeacherClassifier.adopt(student: student, teacher: teacher, data: train, images: n, batchSize: 50)
        XCTAssertEqual(fit.scale, zr / zz, accuracy: 1e-9 * abs(zr / zz))
        XCTAssertGreaterThan(fit.meanCosine, -1)
        XCTAssertLessThan(fit.meanCosine, 0.999, "an untrained student does not match the teacher")
        let a = Float(fit.scale)
        XCTAssertEqual(student.classifier.weight.value.array, teacher.classifier.weight.value.array.map { a * $0 })
        XCTAssertEqual(student.classifier.bias!.value.array, teacher.classifier.bias!.value.array)
    }

    /// `classifier: .teacher`: the saved student has the adopted classifier, its metadata says
    /// so, and the summary's test accuracy is that student's.
    func testDistillationWithTheTeachersClassifier() throws {
        let (train, test) = try digits()
        let teacher = try digitsModel("cnn-small", train, seed: 3)
        let dir = try makeTemporaryDirectory("teacher-classifier", removedAfter: self)
        let out = dir.appendingPathComponent("student.safetensors").path
        let settings = TrainingSettings(
            epochs: 1, batchSize: 64, learningRate: 0.05, schedule: .cosine, sgd: .init(momentum: 0.9, weightDecay: 0),
            cropPadding: 1, horizontalFlip: false, seed: 5,
            objective: .rrm(
                RRMLoss(xentWeight: 0.005, featureLoss: .cosine, inputNoise: 0, replays: 2, replayEpsilon: 0.1)))
        let teacherPath = dir.appendingPathComponent("teacher.safetensors").path
        let teacherMetadata = ModelMetadata(
            model: teacher, dataset: "digits", threatModel: "linf:0.1", trainedBy: "test", seed: 3)
        try SafeTensors(teacher.stateTensors(), metadata: teacherMetadata.dictionary).write(toFile: teacherPath)
        let loaded = try ModelLoader.load(path: teacherPath, dataset: nil)
        var request = DistillationRequest(
            teacher: loaded, teacherPath: teacherPath, teacherSHA256: String(repeating: "ab", count: 32),
            student: "mlp", width: 0.5, train: train, test: test, settings: settings,
            statePath: out + ".state", outPath: out, producer: "test")
        request.head.classifier = .teacher
        let result = try XCTUnwrap(try Distiller.run(request))
        let fit = try XCTUnwrap(result.classifierFit)
        XCTAssertEqual(fit.images, train.count, "fitted on every training image (fewer than 10,000)")
        XCTAssertEqual(result.summary.test, evaluateAccuracy(result.student, on: test))
        XCTAssertTrue(result.metadata.training?.contains(fit.summary) ?? false, result.metadata.training ?? "")
        let saved = try ModelLoader.load(path: out, dataset: nil)
        XCTAssertEqual(saved.metadata.training, result.metadata.training)
        let a = Float(fit.scale)
        XCTAssertEqual(
            saved.network.classifier.weight.value.array, teacher.classifier.weight.value.array.map { a * $0 })
        XCTAssertEqual(saved.network.classifier.bias!.value.array, teacher.classifier.bias!.value.array)
    }
}
