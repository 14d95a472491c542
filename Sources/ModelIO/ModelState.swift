import Checkpoint
import Models
import NN
import TensorCore

/// A mismatch between a checkpoint and the network it is loaded into.
public enum ModelStateError: Error, CustomStringConvertible, Equatable {
    /// Tensors the network needs are absent, or the file has tensors the network lacks.
    case keysDiffer(architecture: String, missing: [String], unexpected: [String])
    /// A tensor has the wrong shape.
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    /// A tensor has the wrong dtype.
    case dtypeMismatch(name: String, expected: String, found: String)

    public var description: String {
        switch self {
        case .keysDiffer(let arch, let missing, let unexpected):
            var parts: [String] = []
            if !missing.isEmpty {
                parts.append(
                    "missing \(missing.count) tensor(s): "
                        + "\(missing.prefix(8).joined(separator: ", "))\(missing.count > 8 ? ", …" : "")"
                )
            }
            if !unexpected.isEmpty {
                parts.append(
                    "unexpected \(unexpected.count) tensor(s): "
                        + "\(unexpected.prefix(8).joined(separator: ", "))\(unexpected.count > 8 ? ", …" : "")"
                )
            }
            return
                "checkpoint does not match architecture '\(arch)': \(parts.joined(separator: "; ")); check the "
                    + "architecture name and width multiplier the checkpoint was made with"
        case .shapeMismatch(let name, let expected, let found):
            return
                "tensor '\(name)' has shape \(found) but the network expects \(expected); check the architecture, "
                    + "width multiplier, input shape and class count"
        case .dtypeMismatch(let name, let expected, let found):
            return "tensor '\(name)' is \(found) but must be \(expected); re-export it with that dtype"
        }
    }
}

extension Network {
    /// The full state (parameters, running statistics, counters) as named stored tensors,
    /// in the network's visiting order.
    public func stateTensors(prefix: String = "") -> [(name: String, tensor: StoredTensor)] {
        var out: [(name: String, tensor: StoredTensor)] = []
        visitState(prefix: prefix) { name, entry in
            switch entry {
            case .parameter(let p): out.append((name, .float32(p.value)))
            case .buffer(let b): out.append((name, .float32(b.value)))
            case .counter(let c): out.append((name, .int64(shape: [], values: [c.value])))
            }
        }
        return out
    }

    /// Loads every state entry from `archive` (names prefixed with `prefix`); every entry must be
    /// present with the right shape and dtype, and no other `prefix` tensors may be present.
    public func loadState(from archive: SafeTensors, prefix: String = "") throws {
        var missing: [String] = []
        var expected = Set<String>()
        var firstError: ModelStateError?
        visitState(prefix: prefix) { name, _ in expected.insert(name) }
        let unexpected = archive.names.filter { $0.hasPrefix(prefix) && !expected.contains($0) }
        visitState(prefix: prefix) { name, _ in if archive[name] == nil { missing.append(name) } }
        if !missing.isEmpty || !unexpected.isEmpty {
            throw ModelStateError.keysDiffer(architecture: architecture, missing: missing, unexpected: unexpected)
        }
        // Check everything before changing anything, so a bad file leaves the network intact.
        visitState(prefix: prefix) { name, entry in
            guard firstError == nil, let stored = archive[name] else { return }
            let (shape, wantsInt): ([Int], Bool) = {
                switch entry {
                case .parameter(let p): return (p.value.shape, false)
                case .buffer(let b): return (b.value.shape, false)
                case .counter: return ([], true)
                }
            }()
            if stored.shape != shape {
                firstError = .shapeMismatch(name: name, expected: shape, found: stored.shape)
            } else if wantsInt && stored.dtype != .i64 {
                firstError = .dtypeMismatch(name: name, expected: "I64", found: stored.dtype.rawValue)
            } else if !wantsInt && stored.dtype != .f32 {
                firstError = .dtypeMismatch(name: name, expected: "F32", found: stored.dtype.rawValue)
            }
        }
        if let firstError { throw firstError }
        visitState(prefix: prefix) { name, entry in
            switch (entry, archive[name]) {
            case (.parameter(let p), .float32(let t)?): p.value = t.reshaped(p.value.shape)
            case (.buffer(let b), .float32(let t)?): b.value = t.reshaped(b.value.shape)
            case (.counter(let c), .int64(_, let v)?): c.value = v.first ?? 0
            default: break
            }
        }
    }
}
