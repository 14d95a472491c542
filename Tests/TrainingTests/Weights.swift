import Checkpoint
import ModelIO
import Models

/// Every weight and buffer of `m` in visiting order, with BatchNorm's step counters as floats:
/// what two runs must agree on bit for bit.
func allWeights(_ m: Network) -> [Float] {
    m.stateTensors().flatMap { entry -> [Float] in
        switch entry.tensor {
        case .float32(let t): return t.array
        case .int64(_, let v): return v.map(Float.init)
        case .raw: return []
        }
    }
}
