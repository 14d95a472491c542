import Kernels
import TensorCore

/// Rectified linear unit, `max(x, 0)`; backward masks by the cached output.
public final class ReLU: Layer {
    private var output: Tensor?

    /// Creates the layer.
    public init() {}

    public func outputShape(for shape: [Int]) -> [Int] { shape }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        let n = x.count
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                Compute.parallelFor(n, minChunk: 1 << 15) { r in
                    Vector.relu(xp + r.lowerBound, yp + r.lowerBound, r.count)
                }
            }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        guard let y = output else { preconditionFailure("ReLU: backward called before forward") }
        return Self.backward(dy, output: y)
    }

    /// `dy` where the ReLU's output `y` is positive, 0 elsewhere, in one pass split over cores.
    static func backward(_ dy: Tensor, output y: Tensor) -> Tensor {
        dy.expectShape(y.shape, "ReLU.backward")
        var dx = Tensor(uninitializedShape: y.shape)
        let n = y.count
        dx.withUnsafeMutablePointer { dxp in
            y.withUnsafePointer { yp in
                dy.withUnsafePointer { dyp in
                    Compute.parallelFor(n, minChunk: 1 << 15) { r in
                        Vector.reluBackward(yp + r.lowerBound, dyp + r.lowerBound, dxp + r.lowerBound, r.count)
                    }
                }
            }
        }
        return dx
    }
}
