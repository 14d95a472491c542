import Kernels
import TensorCore

/// Fully connected layer (`nn.Linear`): `y = x W^T + b`, weight `[out, in]`, bias `[out]`.
public final class Linear: Layer {
    /// Input and output features.
    public let inFeatures, outFeatures: Int
    /// `[out, in]`.
    public let weight: Parameter
    /// `[out]`, or nil for `bias=False`.
    public let bias: Parameter?
    private var input: Tensor?  // [N, in]

    /// A layer initialised like PyTorch's default (uniform, bound 1/sqrt(in)).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout RNG) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(.uniform(shape: [outFeatures, inFeatures], bound: bound, rng: &rng))
        self.bias = bias ? Parameter(.uniform(shape: [outFeatures], bound: bound, rng: &rng)) : nil
    }

    public func outputShape(for shape: [Int]) -> [Int] { [shape[0], outFeatures] }
    public func multiplyAccumulates(for shape: [Int]) -> Int { shape[0] * inFeatures * outFeatures }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(prefix + "weight", .parameter(weight))
        if let bias { visit(prefix + "bias", .parameter(bias)) }
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        expectRank(x, 2, "Linear")
        precondition(x.dim(1) == inFeatures, "Linear: expected [N, \(inFeatures)], got shape \(x.shape)")
        input = x
        let n = x.dim(0)
        var y = Tensor(uninitializedShape: [n, outFeatures])
        y.withUnsafeMutablePointer { yp in
            x.withUnsafePointer { xp in
                weight.value.withUnsafePointer { wp in
                    gemm(
                        transA: false, transB: true, m: n, n: outFeatures, k: inFeatures,
                        alpha: 1, a: xp, lda: inFeatures, b: wp, ldb: inFeatures, beta: 0, c: yp, ldc: outFeatures)
                }
            }
            if let bias {
                bias.value.withUnsafePointer { bp in
                    for i in 0..<n { Vector.add(yp + i * outFeatures, bp, yp + i * outFeatures, outFeatures) }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, parameterGradients: Bool) -> Tensor {
        guard let x = input else { preconditionFailure("Linear: backward called before forward") }
        let n = x.dim(0)
        dy.expectShape([n, outFeatures], "Linear.backward")
        var dx = Tensor(uninitializedShape: x.shape)
        dx.withUnsafeMutablePointer { dxp in
            dy.withUnsafePointer { dyp in
                weight.value.withUnsafePointer { wp in
                    gemm(
                        transA: false, transB: false, m: n, n: inFeatures, k: outFeatures,
                        alpha: 1, a: dyp, lda: outFeatures, b: wp, ldb: inFeatures, beta: 0, c: dxp, ldc: inFeatures)
                }
            }
        }
        if parameterGradients {
            dy.withUnsafePointer { dyp in
                x.withUnsafePointer { xp in
                    weight.grad.withUnsafeMutablePointer { gp in
                        gemm(
                            transA: true, transB: false, m: outFeatures, n: inFeatures, k: n,
                            alpha: 1, a: dyp, lda: outFeatures, b: xp, ldb: inFeatures, beta: 1, c: gp, ldc: inFeatures)
                    }
                }
                if let bias {
                    bias.grad.withUnsafeMutablePointer { bp in
                        for i in 0..<n { Vector.add(bp, dyp + i * outFeatures, bp, outFeatures) }
                    }
                }
            }
        }
        return dx
    }
}
