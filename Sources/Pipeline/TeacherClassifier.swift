import Data
import Foundation
import Models
import NN
import TensorCore

/// Gives a distilled student its teacher's classifier.
///
/// RRM matches the student's representation (after its projection) to the teacher's by cosine,
/// while the student's own classifier learns from labels at a small weight. Where the match is
/// close, the teacher's classifier reads the student's representation as it reads its own: the
/// student's classifier becomes the teacher's weight times the one factor `a` that best maps the
/// student's representation z onto the teacher's r (least squares over training images,
/// a = sum <z, r> / sum <z, z>; the cosine leaves the norm free), and the teacher's bias.
public enum TeacherClassifier {
    /// How the adoption went: the fitted scale and the mean cosine between the representations
    /// on the images it was fitted on.
    public struct Fit: Equatable, Sendable {
        /// The factor a applied to the teacher's weight.
        public var scale: Double
        /// Mean cosine between the student's and the teacher's representation, per image.
        public var meanCosine: Double
        /// Images the fit used.
        public var images: Int

        /// The fit as the student's `rrm.training` metadata records it.
        public var summary: String {
            "classifier: the teacher's, scaled by " + String(format: "%.6g", scale)
                + " (mean cosine \(String(format: "%.4f", meanCosine)) on \(images) training images)"
        }
    }

    /// Replaces `student`'s classifier by `teacher`'s, scaled, fitted on the first `images` of
    /// `data` (inference mode, batches of `batchSize`). The widths must agree (a distilled
    /// student's do: its projection maps to the teacher's width).
    @discardableResult
    public static func adopt(
        student: Network, teacher: Network, data: Dataset, images: Int = 10_000, batchSize: Int = 250
    ) -> Fit {
        precondition(
            student.classifier.weight.value.shape == teacher.classifier.weight.value.shape,
            "TeacherClassifier: the student's classifier \(student.classifier.weight.value.shape) does not read the "
                + "teacher's representation \(teacher.classifier.weight.value.shape)")
        guard let studentBias = student.classifier.bias, let teacherBias = teacher.classifier.bias else {
            preconditionFailure("TeacherClassifier: both classifiers need a bias (every registry classifier has one)")
        }
        let subset = data.prefix(images)
        let n = subset.count
        precondition(n > 0, "TeacherClassifier: no images to fit the scale on")
        var zr = 0.0
        var zz = 0.0
        var cosines = 0.0
        var start = 0
        while start < n {
            let rows = start..<min(start + batchSize, n)
            let x = subset.images.gather(rows: rows)  // [B, C, H, W]
            let z = student.forwardWithRepresentation(x, mode: .inference).representation  // [B, P]
            let r = teacher.forwardWithRepresentation(x, mode: .inference).representation  // [B, P]
            let p = z.dim(1)
            z.withUnsafePointer { zp in
                r.withUnsafePointer { rp in
                    for i in 0..<rows.count {
                        var dot = 0.0
                        var z2 = 0.0
                        var r2 = 0.0
                        for j in 0..<p {
                            let a = Double(zp[i * p + j])
                            let b = Double(rp[i * p + j])
                            dot += a * b
                            z2 += a * a
                            r2 += b * b
                        }
                        zr += dot
                        zz += z2
                        cosines += z2 > 0 && r2 > 0 ? dot / (z2 * r2).squareRoot() : 0
                    }
                }
            }
            start = rows.upperBound
        }
        let scale = zz > 0 ? zr / zz : 1
        let a = Float(scale)
        let w = teacher.classifier.weight.value
        var scaled = Tensor(uninitializedShape: w.shape)
        scaled.withUnsafeMutablePointer { sp in
            w.withUnsafePointer { wp in for i in 0..<w.count { sp[i] = a * wp[i] } }
        }
        student.classifier.weight.value = scaled
        studentBias.value = teacherBias.value
        return Fit(scale: scale, meanCosine: cosines / Double(n), images: n)
    }
}
