import Kernels
import TensorCore

/// Convolution → BatchNorm (→ ReLU) as one step: the per-image work BatchNorm and ReLU need is
/// done in the convolution's epilogue, on each image's output while it is in cache.
/// `Sequential.forward` uses it for every such run of children; each layer is left with what
/// its own forward would have recorded.
enum ConvBatchNorm {
    /// `relu(bn(conv(x)))` in inference mode, fused per image (see `Sequential.forward`).
    /// With `residual`, the block's sum is fused in too: the result is `act(bn(conv(x)) +
    /// residual)`, where `act` is a ReLU when `reluAfterSum` (and `relu` must be nil).
    static func inference(_ x: Tensor, _ conv: Conv2d, _ bn: BatchNorm2d, _ relu: ReLU?,
                          residual: Tensor? = nil, reluAfterSum: Bool = false) -> Tensor {
        let (outShape, c, plane) = outputGeometry(x, conv, bn)
        precondition(residual == nil || (relu == nil && residual!.shape == outShape),
                     "ConvBatchNorm: a residual of shape \(residual?.shape ?? []) does not fit \(outShape)")
        let skip = residual ?? Tensor(shape: [0])
        let (scale, shift) = bn.inferenceAffine()
        var y = Tensor(uninitializedShape: outShape)
        let applyRelu = relu != nil
        // The convolution's own output stays in scratch: BatchNorm's inference backward does not
        // read it, and the rare backward that does (parameter gradients in inference mode) gets
        // it by running the convolution again on the same input.
        let fuseSum = residual != nil
        y.withUnsafeMutablePointer { yp in
          skip.withUnsafePointer { sp in
            conv.forwardDiscardingOutput(x) { image, planes in
                let dst = yp + image * c * plane
                for ch in 0..<c {
                    if fuseSum {
                        Vector.affineAdd(planes + ch * plane, scale[ch], shift[ch], sp + (image * c + ch) * plane,
                                         relu: reluAfterSum, dst + ch * plane, plane)
                    } else if applyRelu {
                        Vector.affineRelu(planes + ch * plane, scale[ch], shift[ch], dst + ch * plane, plane)
                    } else {
                        Vector.affine(planes + ch * plane, scale[ch], shift[ch], dst + ch * plane, plane)
                    }
                }
            }
          }
        }
        bn.adoptInference(shape: outShape) { [conv] in conv.forward(x, epilogue: nil) }
        relu?.adopt(output: y)
        return y
    }

    /// `relu(bn(conv(x)))` in training mode: the convolution hands each image's planes to
    /// `BatchNorm2d.planeMoments` while they are in cache, so BatchNorm needs no statistics pass.
    /// With `residual`, returns `act(bn(conv(x)) + residual)` as `inference` does.
    static func training(_ x: Tensor, _ conv: Conv2d, _ bn: BatchNorm2d, _ relu: ReLU?,
                         residual: Tensor? = nil, reluAfterSum: Bool = false) -> Tensor {
        let (outShape, c, plane) = outputGeometry(x, conv, bn)
        var moments = [Float](repeating: 0, count: 2 * outShape[0] * c)
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
        let y = bn.forwardTraining(convOut, moments: moments, relu: relu != nil, residual: residual, reluAfterSum: reluAfterSum)
        relu?.adopt(output: y)
        return y
    }

    /// The convolution's output shape, channels and plane size, after checking that the
    /// BatchNorm takes that many channels.
    private static func outputGeometry(_ x: Tensor, _ conv: Conv2d, _ bn: BatchNorm2d) -> (shape: [Int], channels: Int, plane: Int) {
        precondition(conv.outChannels == bn.channels,
                     "BatchNorm2d: expected \(bn.channels) channels, got \(conv.outChannels) from the convolution before it")
        let shape = conv.outputShape(for: x.shape)
        return (shape, shape[1], shape[2] * shape[3])
    }
}
