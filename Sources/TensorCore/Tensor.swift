import Foundation
import Kernels

/// Owns one 64-byte-aligned Float32 allocation; `Tensor` shares it copy-on-write.
public final class TensorStorage {
    /// The first element.
    public let base: UnsafeMutablePointer<Float>
    /// Number of elements allocated.
    public let count: Int

    /// Allocates `count` uninitialised elements.
    init(uninitialized count: Int) {
        self.count = count
        base = BufferPool.take(count)
    }

    // Large buffers go back to the pool for the next tensor of the same size (see `BufferPool`).
    deinit { BufferPool.recycle(base, count: count) }

    @usableFromInline func copy() -> TensorStorage {
        let s = TensorStorage(uninitialized: count)
        s.base.update(from: base, count: count)
        return s
    }
}

/// A contiguous row-major Float32 tensor; images are NCHW. Value semantics with copy-on-write.
public struct Tensor {
    /// Dimensions, outermost first (`[N, C, H, W]` for images).
    public private(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage

    /// Number of elements.
    public var count: Int { storage.count }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(uninitializedShape: shape)
        storage.base.update(repeating: value, count: count)
    }

    /// A tensor of `shape` whose elements are not initialised; every element must be written
    /// before it is read. Used for outputs a kernel overwrites completely.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        self.shape = shape
        storage = TensorStorage(uninitialized: shape.reduce(1, *))
    }

    /// A tensor of `shape` holding `data` (row-major).
    public init(shape: [Int], data: [Float]) {
        let n = shape.reduce(1, *)
        precondition(n == data.count, "Tensor: shape \(shape) needs \(n) elements, got \(data.count)")
        self.init(uninitializedShape: shape)
        data.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: n) }
    }

    /// The elements in row-major order.
    public var array: [Float] {
        withUnsafePointer { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// Element at flat index `i`.
    public subscript(flat i: Int) -> Float {
        get {
            precondition(i >= 0 && i < count, "Tensor: index \(i) out of \(count)")
            return storage.base[i]
        }
        set {
            precondition(i >= 0 && i < count, "Tensor: index \(i) out of \(count)")
            makeUnique()
            storage.base[i] = newValue
        }
    }

    /// The same elements viewed with another shape of equal element count (shares storage).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var t = self
        t.reshape(newShape)
        return t
    }

    /// Changes the shape in place; the element count must stay the same.
    public mutating func reshape(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        precondition(n == count, "Tensor: cannot reshape \(shape) (\(count) elements) to \(newShape) (\(n))")
        shape = newShape
    }

    /// Calls `body` with a pointer to the elements, valid only inside `body`.
    @inlinable
    public func withUnsafePointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) { try body(UnsafePointer(storage.base)) }
    }

    /// Calls `body` with a mutable pointer to the elements, copying them first if shared.
    @inlinable
    public mutating func withUnsafeMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try withExtendedLifetime(storage) { try body(storage.base) }
    }

    /// Copies the storage if another tensor shares it.
    @inlinable
    public mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Sets every element to `value`.
    public mutating func fill(_ value: Float) {
        let n = count
        withUnsafeMutablePointer { $0.update(repeating: value, count: n) }
    }

    /// A new tensor of the first-dimension slices `rows`, in that order (e.g. chosen images of a
    /// batch): shape `[rows.count] + shape[1...]`.
    public func gather<Rows: Collection>(rows: Rows) -> Tensor where Rows.Element == Int {
        precondition(rank >= 1, "Tensor.gather: needs rank >= 1, got \(shape)")
        let per = count / max(shape[0], 1)
        var out = Tensor(uninitializedShape: [rows.count] + shape.dropFirst())
        withUnsafePointer { src in
            out.withUnsafeMutablePointer { dst in
                for (j, r) in rows.enumerated() {
                    precondition(r >= 0 && r < shape[0], "Tensor.gather: row \(r) outside 0..<\(shape[0]) of \(shape)")
                    (dst + j * per).update(from: src + r * per, count: per)
                }
            }
        }
        return out
    }

    /// Size of dimension `i`, counting negative `i` from the end.
    public func dim(_ i: Int) -> Int { shape[i >= 0 ? i : shape.count + i] }

    /// Stops with a message showing both shapes unless this tensor has `expected` shape.
    public func expectShape(_ expected: [Int], _ what: @autoclosure () -> String) {
        precondition(shape == expected, "\(what()): expected shape \(expected), got \(shape)")
    }
}

extension Tensor: CustomStringConvertible {
    /// Shape and the first few elements.
    public var description: String {
        let head = array.prefix(6).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 6 ? ", …" : "")]"
    }
}
