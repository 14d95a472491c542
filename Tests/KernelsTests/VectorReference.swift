import Foundation

/// Plain-loop twins of `Vector`'s kernels, accumulating in Double: the independent reference
/// every fast kernel is checked against.
enum VectorReference {
    /// Twin of `Vector.add`.
    static func add(_ a: [Float], _ b: [Float]) -> [Float] { zip(a, b).map { $0 + $1 } }
    /// Twin of `Vector.axpy`.
    static func axpy(_ alpha: Float, _ x: [Float], _ y: [Float]) -> [Float] { zip(x, y).map { $1 + alpha * $0 } }
    /// Twin of `Vector.scale`.
    static func scale(_ x: [Float], _ alpha: Float) -> [Float] { x.map { $0 * alpha } }
    /// Twin of `Vector.maskedAdd`.
    static func maskedAdd(_ y: [Float], _ dy: [Float], _ acc: [Float]) -> [Float] {
        (0..<acc.count).map { acc[$0] + (y[$0] > 0 ? dy[$0] : 0) }
    }
    /// Twin of `Vector.maskedScale`.
    static func maskedScale(_ y: [Float], _ dy: [Float], _ a: Float) -> [Float] {
        zip(y, dy).map { ($0 > 0 ? $1 : 0) * a }
    }
    /// Twin of `Vector.relu`.
    static func relu(_ x: [Float]) -> [Float] { x.map { $0 > 0 ? $0 : 0 } }
    /// Twin of `Vector.affineAdd`.
    static func affineAdd(_ x: [Float], _ a: Float, _ b: Float, _ s: [Float], relu: Bool) -> [Float] {
        zip(x, s).map { relu ? Swift.max(($0 * a + b) + $1, 0) : ($0 * a + b) + $1 }
    }
    /// Twin of `Vector.addRelu`.
    static func addRelu(_ a: [Float], _ b: [Float]) -> [Float] { zip(a, b).map { Swift.max($0 + $1, 0) } }
    /// Twin of `Vector.affineRelu`.
    static func affineRelu(_ x: [Float], _ a: Float, _ b: Float) -> [Float] { x.map { Swift.max($0 * a + b, 0) } }
    /// Twin of `Vector.reluBackward`.
    static func reluBackward(_ y: [Float], _ dy: [Float]) -> [Float] { zip(y, dy).map { $0 > 0 ? $1 : 0 } }
    /// Twin of `Vector.sum`.
    static func sum(_ x: [Float]) -> Double { x.reduce(0.0) { $0 + Double($1) } }
    /// Twin of `Vector.dot`.
    static func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
    /// Twin of `Vector.shiftedMoments`.
    static func shiftedMoments(_ x: [Float], shift: Float) -> (sum: Double, squares: Double) {
        let s = x.reduce(0.0) { $0 + (Double($1) - Double(shift)) }
        let q = x.reduce(0.0) { $0 + (Double($1) - Double(shift)) * (Double($1) - Double(shift)) }
        return (s, q)
    }
    /// Twin of `Vector.sumAndDot`.
    static func sumAndDot(_ a: [Float], _ b: [Float]) -> (sum: Double, dot: Double) { (sum(a), dot(a, b)) }
    /// Twin of `Vector.affine`.
    static func affine(_ x: [Float], _ a: Float, _ b: Float) -> [Float] { x.map { $0 * a + b } }
    /// Twin of `Vector.maximum`.
    static func maximum(_ x: [Float]) -> Float { x.reduce(-Float.infinity) { Swift.max($0, $1) } }
}

extension VectorReference {
    /// Twin of `Vector.combine`.
    static func combine(_ x: [Float], _ a: Float, _ y: [Float], _ b: Float, _ c: Float) -> [Float] {
        zip(x, y).map { a * $0 + b * $1 + c }
    }
    /// Twin of `Vector.addScalar`.
    static func addScalar(_ x: [Float], _ c: Float) -> [Float] { x.map { $0 + c } }
}
