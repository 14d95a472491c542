import Kernels
import TensorCore

/// A convolution and the BatchNorm after it run as one step, and what the step's backward needs:
/// the engine of `ConvBNReLU` and `ResidualBlock`. The per-image work BatchNorm needs is done in
/// the convolution's epilogue, on each image's output planes while they are in cache:
///
/// - training: the planes' moments for the batch statistics, so BatchNorm needs no statistics
///   pass; normalisation and the epilogue (ReLU, residual sum) then share one pass;
/// - inference: the affine map and the epilogue themselves, so the convolution's output is never
///   written out (a backward that needs it, for parameter gradients, runs the convolution again).
///
/// Results are the bits of running `Conv2d`, `BatchNorm2d` and `ReLU` one by one
/// (FusedLayersTests).
final class ConvBNStage {
    let conv: Conv2d
    let bn: BatchNorm2d

    private var statistics: BatchNormStatistics?
    private var outputShape: [Int] = []
    private var bnInput: Tensor?  // the convolution's output, kept by a training forward
    private var convInput: Tensor?  // kept by an inference forward, to recompute bnInput if needed

    init(conv: Conv2d, bn: BatchNorm2d) {
        precondition(
            conv.outChannels == bn.channels,
            "BatchNorm2d: expected \(bn.channels) channels, got \(conv.outChannels) from the convolution before it")
        self.conv = conv
        self.bn = bn
    }

    /// Whether the last forward used batch statistics.
    var trainedLast: Bool { statistics?.training ?? false }

    /// `epilogue(bn(conv(x)))`.
    func forward(_ x: Tensor, mode: Mode, then epilogue: AffineEpilogue) -> Tensor {
        let shape = conv.outputShape(for: x.shape)
        let c = shape[1]
        let plane = shape[2] * shape[3]
        if case .add(let residual, _) = epilogue {
            precondition(
                residual.shape == shape, "ConvBNStage: a residual of shape \(residual.shape) does not fit \(shape)")
        }
        outputShape = shape
        if mode == .training {
            var moments = [Float](repeating: 0, count: 2 * shape[0] * c)
            let convOut = moments.withUnsafeMutableBufferPointer { buffer in
                let mp = buffer.baseAddress!
                return conv.forward(x) { image, planes in
                    for ch in 0..<c {
                        let part = BatchNorm2d.planeMoments(planes + ch * plane, plane)
                        mp[2 * (image * c + ch)] = part.sum
                        mp[2 * (image * c + ch) + 1] = part.squares
                    }
                }
            }
            let s = bn.batchStatistics(convOut, moments: moments)
            statistics = s
            bnInput = convOut
            convInput = nil
            return bn.normalize(convOut, s, then: epilogue)
        }
        let s = bn.runningStatistics()
        statistics = s
        bnInput = nil
        convInput = x
        let (scale, shift) = (s.scale, s.shift)
        var y = Tensor(uninitializedShape: shape)
        y.withUnsafeMutablePointer { yp in
            epilogue.withResidual { rp in
                conv.forwardDiscardingOutput(x) { image, planes in
                    for ch in 0..<c {
                        let off = (image * c + ch) * plane
                        epilogue.apply(
                            planes + ch * plane, scale[ch], shift[ch], residual: rp.map { $0 + off },
                            yp + off, plane)
                    }
                }
            }
        }
        return y
    }

    /// The backward of the last forward, with a ReLU's backward folded in as `mask` says; adds
    /// parameter gradients when asked. In an attack's backward (inference, input gradient only,
    /// a ReLU's output as the mask) BatchNorm and ReLU are applied as the convolution reads dy
    /// (`Conv2d.inputGradient(maskedScaled:mask:factors:)`), where its kernel allows.
    func backward(_ dy: Tensor, mask: ReLUMask, parameterGradients: Bool) -> Tensor {
        guard let s = statistics else { preconditionFailure("ConvBNStage: backward called before forward") }
        if !s.training, !parameterGradients, case .output(let y) = mask,
            let dx = conv.inputGradient(maskedScaled: dy, mask: y, factors: s.scale)
        {
            return dx
        }
        // BatchNorm reads its input only for batch statistics or parameter gradients.
        var x = bnInput
        if x == nil, parameterGradients, let convInput { x = conv.forward(convInput, epilogue: nil) }
        let g = bn.backward(
            dy, input: x, shape: outputShape, statistics: s, mask: mask, parameterGradients: parameterGradients)
        return conv.backward(g, parameterGradients: parameterGradients)
    }
}
