import Kernels
import TensorCore

/// `Conv2d` on `DirectConv3x3` (3x3, stride 1, padding 1, no groups, AVX-512): forward, input
/// gradient and weight gradient without im2col or GEMM packing.
extension Conv2d {
    /// The direct kernel for an `h x w` input, when this layer's window is one it computes and
    /// `useDirectKernel` is on; nil means the im2col + GEMM path.
    func directPlan(_ h: Int, _ w: Int) -> DirectConv3x3? {
        guard Conv2d.useDirectKernel, kernelH == 3, kernelW == 3, stride == 1, padding == 1, groups == 1 else {
            return nil
        }
        return DirectConv3x3(inChannels: inChannels, outChannels: outChannels, height: h, width: w)
    }

    /// The kernel for this layer's forward pass over an `h x w` input: `directPlan`, or
    /// `stridedPlan`.
    func forwardPlan(_ h: Int, _ w: Int) -> (any PaddedConvolution)? {
        directPlan(h, w) ?? stridedPlan(h, w)
    }

    /// `StridedConv3x3` for 3x3, stride-2, padding-1 windows without groups.
    func stridedPlan(_ h: Int, _ w: Int) -> StridedConv3x3? {
        guard Conv2d.useDirectKernel, kernelH == 3, kernelW == 3, stride == 2, padding == 1, groups == 1 else {
            return nil
        }
        return StridedConv3x3(inChannels: inChannels, outChannels: outChannels, height: h, width: w)
    }

    /// `forward` on a direct kernel: each image padded, convolved and unpadded on one worker,
    /// into `out` or, when it is nil, into scratch (see `outputImage`).
    func forwardDirect<Plan: PaddedConvolution>(
        _ x: Tensor, _ plan: Plan, into out: UnsafeMutablePointer<Float>?,
        outImage: Int, _ epilogue: ((Int, UnsafeMutablePointer<Float>) -> Void)?
    ) {
        let packed = weight.value.withUnsafePointer { plan.packForward($0) }
        let biasValues = bias?.value.array ?? []
        let inImage = x.dim(1) * x.dim(2) * x.dim(3)
        x.withUnsafePointer { xp in
            packed.withUnsafeBufferPointer { wp in
                biasValues.withUnsafeBufferPointer { biasBuffer in
                    let bp = bias == nil ? nil : biasBuffer.baseAddress
                    _ = Compute.parallelChunks(x.dim(0)) { worker, images in
                        let padded = Scratch.buffer(worker: worker, slot: .paddedInput, count: plan.paddedInputCount)
                        let result = Scratch.buffer(worker: worker, slot: .output, count: plan.paddedOutputCount)
                        for i in images {
                            let image = outputImage(out, i, worker: worker, count: outImage)
                            plan.pad(xp + i * inImage, padded)
                            plan.run(padded, wp.baseAddress!, result)
                            plan.unpad(result, bias: bp, image)
                            epilogue?(i, image)
                        }
                    }
                }
            }
        }
    }

    /// `forward` on Winograd (`DirectConv3x3.runWinograd`): `winogradGroup` images at a time
    /// padded and transformed together on one worker, their outputs written unpadded (into `out`,
    /// or the `.images` scratch slot when it is nil), then each image's epilogue.
    func forwardWinograd(
        _ x: Tensor, _ plan: DirectConv3x3, into out: UnsafeMutablePointer<Float>?,
        outImage: Int, _ epilogue: ((Int, UnsafeMutablePointer<Float>) -> Void)?
    ) {
        let packed = weight.value.withUnsafePointer { plan.packWinogradForward($0) }
        let biasValues = bias?.value.array ?? []
        let inImage = x.dim(1) * x.dim(2) * x.dim(3)
        let group = plan.winogradGroup
        let padCount = plan.paddedImageStride
        x.withUnsafePointer { xp in
            packed.withUnsafeBufferPointer { wp in
                biasValues.withUnsafeBufferPointer { biasBuffer in
                    let bp = bias == nil ? nil : biasBuffer.baseAddress
                    _ = Compute.parallelChunks(x.dim(0)) { worker, images in
                        let padded = Scratch.buffer(worker: worker, slot: .paddedInput, count: group * padCount)
                        let scratch = Scratch.buffer(worker: worker, slot: .output, count: plan.winogradScratchCount)
                        let local =
                            out == nil ? Scratch.buffer(worker: worker, slot: .images, count: group * outImage) : nil
                        for first in Swift.stride(from: images.lowerBound, to: images.upperBound, by: group) {
                            let count = min(group, images.upperBound - first)
                            for b in 0..<count { plan.pad(xp + (first + b) * inImage, padded + b * padCount) }
                            let dst = out.map { $0 + first * outImage } ?? local!
                            plan.runWinograd(
                                padded, paddedStride: padCount, images: count, weights: wp.baseAddress!,
                                scratch: scratch, dst, outputStride: outImage, bias: bp)
                            if let epilogue { for b in 0..<count { epilogue(first + b, dst + b * outImage) } }
                        }
                    }
                }
            }
        }
    }

    /// The input-gradient convolution of a layer on `plan` (channel roles swapped) and its
    /// packed weights (window flipped), for Winograd when the plan uses it.
    private func inputGradientPlan(_ plan: DirectConv3x3) -> (plan: DirectConv3x3, weights: [Float]) {
        let gradientPlan = plan.inputGradientPlan
        return (
            gradientPlan,
            weight.value.withUnsafePointer {
                gradientPlan.usesWinograd
                    ? gradientPlan.packWinogradInputGradient($0) : gradientPlan.packInputGradient($0)
            }
        )
    }

    /// dL/dx of `images` images from their dy padded `paddedStride` floats apart, into
    /// `dx + b * dxStride`: on Winograd or, image by image, the tiles (the `.output` scratch slot).
    private func runInputGradient(
        _ gradientPlan: DirectConv3x3, _ padded: UnsafePointer<Float>, paddedStride: Int, images: Int,
        weights: UnsafePointer<Float>, worker: Int, _ dx: UnsafeMutablePointer<Float>, dxStride: Int
    ) {
        if gradientPlan.usesWinograd {
            let scratch = Scratch.buffer(worker: worker, slot: .output, count: gradientPlan.winogradScratchCount)
            gradientPlan.runWinograd(
                padded, paddedStride: paddedStride, images: images, weights: weights, scratch: scratch,
                dx, outputStride: dxStride, bias: nil)
            return
        }
        let result = Scratch.buffer(worker: worker, slot: .output, count: gradientPlan.paddedOutputCount)
        for b in 0..<images {
            gradientPlan.run(padded + b * paddedStride, weights, result)
            gradientPlan.unpad(result, bias: nil, dx + b * dxStride)
        }
    }

    /// dL/dx into `dx` and, with `parameterGradients`, each worker's dL/dW into its `.weightGradient` scratch slot
    /// (which `finishParameterGradients` sums); returns the number of workers used.
    ///
    /// dL/dx of a stride-1 window is the convolution of dy with the window flipped and the
    /// channel roles swapped, so it runs on the same kernel. Images go a group at a time: each
    /// one's dy is padded once, and that padding feeds both the weight gradient of the group
    /// (`accumulateWeightGradient`, which also reads the group's inputs padded as the forward
    /// pass pads them) and each image's input-gradient convolution. On a plan that uses
    /// Winograd, both run on it: the weight gradient summed in the transformed domain over every
    /// group (`accumulateWinogradWeightGradient`) and mapped back once per worker at the end.
    func backwardDirect(
        _ x: Tensor, _ dy: Tensor, _ plan: DirectConv3x3, _ dx: inout Tensor,
        parameterGradients: Bool
    ) -> Int {
        let (gradientPlan, packed) = inputGradientPlan(plan)
        let wCount = weight.value.count
        let plane = plan.height * plan.width
        let winograd = plan.usesWinograd && parameterGradients
        // Winograd's weight gradient wants its whole group of tiles at once (long sums).
        let group = min(
            winograd ? max(plan.weightGradientGroup, plan.winogradGradientGroup) : plan.weightGradientGroup, x.dim(0))
        let inputCount = plan.paddedImageStride
        let gradientCount = gradientPlan.paddedImageStride
        let lead = gradientPlan.gradientLead
        return dx.withUnsafeMutablePointer { dxp in
            x.withUnsafePointer { xp in
                dy.withUnsafePointer { dyp in
                    packed.withUnsafeBufferPointer { wp in
                        Compute.parallelChunks(x.dim(0)) { worker, images in
                            let dW =
                                parameterGradients
                                ? Scratch.buffer(worker: worker, slot: .weightGradient, count: wCount) : nil
                            dW?.update(repeating: 0, count: wCount)
                            let inputs =
                                parameterGradients
                                ? Scratch.buffer(worker: worker, slot: .images, count: group * inputCount) : nil
                            let grads =
                                Scratch.buffer(
                                    worker: worker, slot: .outputGradients, count: lead + group * gradientCount) + lead
                            // Winograd's weight gradient sums in the transformed domain until the end.
                            let sums =
                                winograd
                                ? Scratch.buffer(worker: worker, slot: .columns, count: plan.winogradGradientSumCount)
                                : nil
                            sums?.update(repeating: 0, count: plan.winogradGradientSumCount)
                            for first in Swift.stride(from: images.lowerBound, to: images.upperBound, by: group) {
                                let count = min(group, images.upperBound - first)
                                for b in 0..<count {
                                    gradientPlan.pad(dyp + (first + b) * outChannels * plane, grads + b * gradientCount)
                                }
                                if let dW, let inputs {
                                    for b in 0..<count {
                                        plan.pad(xp + (first + b) * inChannels * plane, inputs + b * inputCount)
                                    }
                                    if let sums {
                                        let scratch = Scratch.buffer(
                                            worker: worker, slot: .paddedInput, count: plan.winogradGradientScratchCount
                                        )
                                        plan.accumulateWinogradWeightGradient(
                                            paddedInputs: inputs, inputStride: inputCount,
                                            paddedGradients: grads, gradientStride: gradientCount,
                                            images: count, scratch: scratch, sums: sums)
                                    } else {
                                        plan.accumulateWeightGradient(
                                            paddedInputs: inputs, inputStride: inputCount,
                                            paddedGradients: grads, gradientStride: gradientCount,
                                            images: count, into: dW)
                                    }
                                }
                                runInputGradient(
                                    gradientPlan, grads, paddedStride: gradientCount, images: count,
                                    weights: wp.baseAddress!, worker: worker,
                                    dxp + first * inChannels * plane, dxStride: inChannels * plane)
                            }
                            if let sums, let dW { plan.finishWinogradWeightGradient(sums, into: dW) }
                        }
                    }
                }
            }
        }
    }

    /// The backward of a stride-2 layer on the tiles: images go a group at a time, each one's dy
    /// bordered once (`padGradient`) for both the group's weight gradient (with the inputs split
    /// into phases as the forward pass splits them) and each image's input gradient, phase by
    /// phase (`StridedConv3x3.inputGradient`). Each worker's dL/dW goes into its `.weightGradient` scratch slot;
    /// returns the number of workers used.
    func backwardStrided(
        _ x: Tensor, _ dy: Tensor, _ plan: StridedConv3x3, _ dx: inout Tensor,
        parameterGradients: Bool
    ) -> Int {
        let weights = weight.value.withUnsafePointer { plan.packInputGradient($0) }
        let offsets = plan.inputGradientOffsets()
        let wCount = weight.value.count
        let group = min(plan.weightGradientGroup, x.dim(0))
        let inImage = inChannels * plan.height * plan.width
        let outImage = outChannels * plan.outHeight * plan.outWidth
        let inputCount = plan.paddedInputCount
        let gradientCount = plan.paddedGradientCount
        return dx.withUnsafeMutablePointer { dxp in
            x.withUnsafePointer { xp in
                dy.withUnsafePointer { dyp in
                    Compute.parallelChunks(x.dim(0)) { worker, images in
                        let dW =
                            parameterGradients
                            ? Scratch.buffer(worker: worker, slot: .weightGradient, count: wCount) : nil
                        dW?.update(repeating: 0, count: wCount)
                        let inputs =
                            parameterGradients
                            ? Scratch.buffer(worker: worker, slot: .images, count: group * inputCount) : nil
                        let grads = Scratch.buffer(worker: worker, slot: .outputGradients, count: group * gradientCount)
                        let result = Scratch.buffer(worker: worker, slot: .output, count: plan.phaseResultCount)
                        for first in Swift.stride(from: images.lowerBound, to: images.upperBound, by: group) {
                            let count = min(group, images.upperBound - first)
                            for b in 0..<count {
                                plan.padGradient(dyp + (first + b) * outImage, grads + b * gradientCount)
                            }
                            if let dW, let inputs {
                                for b in 0..<count { plan.pad(xp + (first + b) * inImage, inputs + b * inputCount) }
                                plan.accumulateWeightGradient(
                                    paddedInputs: inputs, inputStride: inputCount,
                                    paddedGradients: grads, gradientStride: gradientCount,
                                    images: count, into: dW)
                            }
                            for b in 0..<count {
                                plan.inputGradient(
                                    grads + b * gradientCount, weights: weights, offsets: offsets,
                                    scratch: result, dxp + (first + b) * inImage)
                            }
                        }
                    }
                }
            }
        }
    }

    /// dL/dx with no parameter gradients, where this layer is followed by an inference-mode
    /// BatchNorm with gradient factors `factors` (gamma / sqrt(running var + eps), its `scale`) and
    /// then a ReLU with output `mask`: the BatchNorm's and ReLU's backward are applied as dy is
    /// padded for the kernel, so neither writes a tensor. Bit-identical to running the three
    /// backwards in turn. Nil, having done nothing, when this layer is not on `directPlan`.
    func inputGradient(maskedScaled dy: Tensor, mask: Tensor, factors: [Float]) -> Tensor? {
        guard let x = inputShapeOfLastForward, let plan = directPlan(x[2], x[3]) else { return nil }
        dy.expectShape([x[0], outChannels, x[2], x[3]], "Conv2d.backward")
        mask.expectShape(dy.shape, "Conv2d.backward (ReLU output)")
        precondition(
            factors.count == outChannels, "Conv2d: \(factors.count) BatchNorm factors for \(outChannels) channels")
        let (gradientPlan, packed) = inputGradientPlan(plan)
        let plane = plan.height * plan.width
        let group = gradientPlan.usesWinograd ? gradientPlan.winogradGroup : 1
        var dx = Tensor(uninitializedShape: x)
        dx.withUnsafeMutablePointer { dxp in
            dy.withUnsafePointer { dyp in
                mask.withUnsafePointer { mp in
                    factors.withUnsafeBufferPointer { fp in
                        packed.withUnsafeBufferPointer { wp in
                            _ = Compute.parallelChunks(x[0]) { worker, images in
                                let padCount = gradientPlan.paddedImageStride
                                let padded = Scratch.buffer(worker: worker, slot: .paddedInput, count: group * padCount)
                                for first in Swift.stride(from: images.lowerBound, to: images.upperBound, by: group) {
                                    let count = min(group, images.upperBound - first)
                                    for b in 0..<count {
                                        let off = (first + b) * outChannels * plane
                                        gradientPlan.padMaskedScaled(
                                            dyp + off, mask: mp + off, factors: fp.baseAddress!,
                                            padded + b * padCount)
                                    }
                                    runInputGradient(
                                        gradientPlan, padded, paddedStride: padCount, images: count,
                                        weights: wp.baseAddress!, worker: worker,
                                        dxp + first * inChannels * plane, dxStride: inChannels * plane)
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}
