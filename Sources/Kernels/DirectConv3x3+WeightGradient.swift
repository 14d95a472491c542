import KernelsAVX512

/// The weight gradient of a direct 3x3 convolution over a group of images
/// (`conv3x3WeightGradient`), read straight from the layouts the other two passes already build:
/// the input images as `pad` lays them out for the forward pass, and dL/dy as the input-gradient
/// plan's `pad` lays it out. Shifted by one padded row and one column, that padded dy is dL/dy at
/// the output positions of the forward layout, with the borders as the zeros the extra columns
/// need, so one padding of dy serves both gradients and no im2col matrix or GEMM packing is built.
extension DirectConv3x3 {
    /// Images per group: as many as keep the group's padded inputs and gradients within 512 KiB
    /// (a Zen L2 is 1 MiB), since each input plane is read once per pair of output channels.
    public var weightGradientGroup: Int {
        max(1, (512 * 1024 / 4) / ((inChannels + outChannels) * planeStride))
    }

    /// The plan of this convolution's input gradient: channel roles swapped, same image size.
    public var inputGradientPlan: DirectConv3x3 {
        DirectConv3x3(inChannels: outChannels, outChannels: inChannels, height: height, width: width)
    }

    /// Floats one padded image takes in a group buffer: `paddedInputCount` rounded up to whole
    /// 64-byte lines, so every image of an aligned buffer starts aligned.
    public var paddedImageStride: Int { (paddedInputCount + 15) / 16 * 16 }

    /// Where in an aligned buffer this plan's padded images should start when the weight
    /// gradient reads them as dL/dy (this is then the input-gradient plan): dy's output positions
    /// begin `rowStride + 1` floats into each plane, and this many floats of lead put them on a
    /// 64-byte boundary, so the kernel's loads of dy are aligned.
    public var gradientLead: Int { (16 - (rowStride + 1) % 16) % 16 }

    /// Adds the weight gradient of `images` images to `dW [outChannels][inChannels][3][3]`.
    /// `paddedInputs` holds the input images as `pad` writes them, `inputStride` floats apart;
    /// `paddedGradients` holds dL/dy of the same images as `inputGradientPlan.pad` writes them,
    /// `gradientStride` floats apart.
    public func accumulateWeightGradient(
        paddedInputs: UnsafePointer<Float>, inputStride: Int,
        paddedGradients: UnsafePointer<Float>, gradientStride: Int, images: Int,
        into dW: UnsafeMutablePointer<Float>
    ) {
        // Output position j of the forward layout is padded position j + rowStride + 1.
        conv3x3WeightGradient(
            inputs: PlaneStreams(paddedInputs, imageStride: inputStride, channelStride: planeStride),
            inChannels: inChannels,
            gradients: PlaneStreams(
                paddedGradients + rowStride + 1, imageStride: gradientStride,
                channelStride: planeStride),
            outChannels: outChannels, images: images,
            positions: height * rowStride, rowStride: rowStride, weightGradient: dW)
    }
}
