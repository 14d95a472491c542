import TensorCore

/// A safetensors archive in memory: named tensors in insertion (or file) order, plus the
/// `__metadata__` string map.
///
/// Names are PyTorch state_dict keys (design.md §3). Reading preserves the file's data order;
/// writing uses the reference library's order (see `serialized()`), so order here only affects
/// `names` and iteration.
public struct SafeTensors {
    /// The header's `__metadata__` map (e.g. `rrm.arch`, `rrm.seed`); empty means none written.
    public var metadata: [String: String]
    /// Tensor names in order.
    public private(set) var names: [String] = []
    /// Tensors by name.
    private var tensors: [String: StoredTensor] = [:]

    /// An empty archive with `metadata`.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// An archive holding `tensors` in the given order; names must be unique.
    public init(_ tensors: [(name: String, tensor: StoredTensor)], metadata: [String: String] = [:]) {
        self.metadata = metadata
        for (name, tensor) in tensors {
            precondition(self.tensors[name] == nil, "SafeTensors: duplicate tensor name '\(name)'")
            self[name] = tensor
        }
    }

    /// Number of tensors.
    public var count: Int { names.count }

    /// The named tensors in order.
    public var entries: [(name: String, tensor: StoredTensor)] { names.map { ($0, tensors[$0]!) } }

    /// The tensor called `name`, or nil. Setting appends a new name at the end, replaces an
    /// existing tensor in place, or removes it when set to nil.
    public subscript(name: String) -> StoredTensor? {
        get { tensors[name] }
        set {
            // `__metadata__` is the header key of the metadata map; a tensor with that name
            // could not be written.
            precondition(name != "__metadata__", "SafeTensors: '__metadata__' is reserved and cannot name a tensor")
            if let newValue {
                newValue.checkConsistent(name)
                if tensors.updateValue(newValue, forKey: name) == nil { names.append(name) }
            } else if tensors.removeValue(forKey: name) != nil {
                names.removeAll { $0 == name }
            }
        }
    }

    /// The stored tensor called `name`, or a `missingTensor` error listing what exists.
    public func tensor(_ name: String) throws -> StoredTensor {
        guard let t = tensors[name] else { throw CheckpointError.missingTensor(name: name, available: names) }
        return t
    }

    /// The F32 tensor called `name`; throws if it is missing or has another dtype.
    public func float32(_ name: String) throws -> Tensor {
        let stored = try tensor(name)
        guard case .float32(let t) = stored else {
            throw CheckpointError.wrongDType(name: name, expected: .f32, actual: stored.dtype)
        }
        return t
    }

    /// The F32 tensor called `name`, which must have exactly `shape`.
    public func float32(_ name: String, shape: [Int]) throws -> Tensor {
        let t = try float32(name)
        guard t.shape == shape else { throw CheckpointError.wrongShape(name: name, expected: shape, actual: t.shape) }
        return t
    }

    /// The I64 tensor called `name`; throws if it is missing or has another dtype.
    public func int64(_ name: String) throws -> (shape: [Int], values: [Int64]) {
        let stored = try tensor(name)
        guard case .int64(let shape, let values) = stored else {
            throw CheckpointError.wrongDType(name: name, expected: .i64, actual: stored.dtype)
        }
        return (shape, values)
    }
}
