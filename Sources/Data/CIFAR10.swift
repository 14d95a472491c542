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
        let pixels = recordSize - 1
        try MemoryBudget.check(
            n * pixels * MemoryLayout<Float>.size, for: "decoding \(n) CIFAR-10 images",
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
                        let label = Int(src[at])
                        if label >= numClasses {
                            throw DataError.labelOutOfRange(
                                path: file.path, index: r, offset: at, label: label, numClasses: numClasses)
                        }
                        labels[next] = Int32(label)
                        let out = dst + next * pixels
                        for i in 0..<pixels { out[i] = table[Int(src[at + 1 + i])] }
                        r += 1
                        next += 1
                    }
                }
            }
        }
        return (images, labels)
    }
}
