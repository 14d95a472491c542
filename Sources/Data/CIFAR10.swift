import Kernels
import TensorCore

/// Reader for the CIFAR-10 "binary version" (data_batch_1.bin … data_batch_5.bin, test_batch.bin).
///
/// Each record is 1 label byte followed by 3,072 pixel bytes: the 1,024 red, then green, then
/// blue values of a 32x32 image, row-major, which is already CHW order. Files may be gzipped.
public enum CIFAR10 {
    /// Bytes per record: 1 label + 3 x 32 x 32 pixels.
    public static let recordSize = 1 + 3 * 32 * 32
    /// Number of classes.
    public static let numClasses = 10
    /// Class names in label order (from batches.meta.txt).
    public static let classNames = [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ]
    /// The training files, in the order their records are concatenated.
    public static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
    /// The test file.
    public static let testFiles = ["test_batch.bin"]

    /// Reads the records of `paths` in order as images `[N, 3, 32, 32]` in [0, 1] and labels;
    /// `limit` keeps only the first records (later files are then not opened).
    public static func read(
        paths: [String], limit: Int? = nil, hint: String = ""
    ) throws -> (images: Tensor, labels: [Int32]) {
        try CIFARBinary.read(
            paths: paths, labelBytes: 1, labelOffset: 0, numClasses: numClasses, name: "CIFAR-10", limit: limit,
            hint: hint)
    }
}

/// The record layout the CIFAR binary versions share: label bytes, then a 32x32 image as 1,024
/// red, 1,024 green and 1,024 blue bytes (CHW order already). Files may be gzipped.
public enum CIFARBinary {
    /// Reads the records of `paths` in order as images `[N, 3, 32, 32]` in [0, 1] and labels:
    /// each record is `labelBytes` label bytes (the label used is the one at `labelOffset`) and
    /// 3,072 pixel bytes; `limit` keeps only the first records (later files are then not opened).
    public static func read(
        paths: [String], labelBytes: Int, labelOffset: Int, numClasses: Int, name: String, limit: Int? = nil,
        hint: String = ""
    ) throws -> (images: Tensor, labels: [Int32]) {
        let recordSize = labelBytes + 3 * 32 * 32
        let wanted = max(0, limit ?? Int.max)
        var files: [(path: String, bytes: [UInt8])] = []
        var records = 0
        for path in paths where records < wanted {
            let reader = try ContentReader(path: path, hint: hint)
            let bytes = try reader.readToEnd()
            if bytes.count % recordSize != 0 {
                throw DataError.badRecordSize(path: path, size: bytes.count, recordSize: recordSize)
            }
            files.append((path, bytes))
            records += bytes.count / recordSize
        }
        let n = min(records, wanted)
        let pixels = recordSize - labelBytes
        try MemoryBudget.check(
            n * pixels * MemoryLayout<Float>.size, for: "decoding \(n) \(name) images",
            whatToDo: "read fewer images (limit), or run where more memory is available")
        var images = Tensor(uninitializedShape: [n, 3, 32, 32])  // [N, 3, 32, 32]
        var labels = [Int32](repeating: 0, count: n)
        let table = IDX.scaleTable(255)
        var next = 0
        try images.withUnsafeMutablePointer { dst in
            for k in files.indices {
                let file = files[k]
                files[k].bytes = []  // free each file's bytes once converted
                try file.bytes.withUnsafeBufferPointer { src in
                    var r = 0
                    while r < src.count / recordSize && next < n {
                        let at = r * recordSize
                        let label = Int(src[at + labelOffset])
                        if label >= numClasses {
                            throw DataError.labelOutOfRange(
                                path: file.path, index: r, offset: at, label: label, numClasses: numClasses)
                        }
                        labels[next] = Int32(label)
                        let out = dst + next * pixels
                        for i in 0..<pixels { out[i] = table[Int(src[at + labelBytes + i])] }
                        r += 1
                        next += 1
                    }
                }
            }
        }
        return (images, labels)
    }
}

/// Reader for the CIFAR-100 "binary version" (train.bin, test.bin): each record is the coarse
/// label (20 superclasses), the fine label (100 classes), then 3,072 pixel bytes.
public enum CIFAR100 {
    /// Bytes per record: 2 labels + 3 x 32 x 32 pixels.
    public static let recordSize = 2 + 3 * 32 * 32
    /// The training file.
    public static let trainFiles = ["train.bin"]
    /// The test file.
    public static let testFiles = ["test.bin"]

    /// Reads the records of `paths` with their fine labels (100 classes), or their coarse ones
    /// (20 superclasses) when `coarse`.
    public static func read(
        paths: [String], coarse: Bool = false, limit: Int? = nil, hint: String = ""
    ) throws -> (images: Tensor, labels: [Int32]) {
        try CIFARBinary.read(
            paths: paths, labelBytes: 2, labelOffset: coarse ? 0 : 1, numClasses: coarse ? 20 : 100,
            name: "CIFAR-100", limit: limit, hint: hint)
    }
}
