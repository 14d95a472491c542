import Data
import Foundation
import Models
import NN
import TensorCore
import TestSupport
import Training

/// One small cnn-small trained naturally on digits, shared by every test of the target so it trains once.
enum Fixture {
    static let model: (network: Network, test: Dataset) = {
        let data = try! digits()
        let network = try! digitsModel("cnn-small", data.train, seed: 7)
        let settings = TrainingSettings(epochs: 3, batchSize: 50, learningRate: 0.05, cropPadding: 0, seed: 7)
        _ = Trainer(model: network, settings: settings).run(train: data.train, test: data.test)
        return (network, data.test)
    }()
}

/// Largest |x_adv - x| and each example's L2 distance, in Double.
func distances(_ adv: Tensor, _ x: Tensor) -> (linf: Double, l2: [Double], inBox: Bool) {
    let a = adv.array
    let b = x.array
    let n = x.dim(0)
    let d = x.count / n
    var linf = 0.0
    var l2 = [Double](repeating: 0, count: n)
    for e in 0..<n {
        for i in 0..<d {
            let delta = Double(a[e * d + i]) - Double(b[e * d + i])
            linf = max(linf, abs(delta))
            l2[e] += delta * delta
        }
        l2[e] = l2[e].squareRoot()
    }
    return (linf, l2, a.allSatisfy { $0 >= 0 && $0 <= 1 })
}

/// Every weight, gradient and buffer of `net`, to show that an attack left the network as it was.
func stateSnapshot(_ net: Network) -> [[Float]] {
    var out: [[Float]] = []
    net.visitState(prefix: "") { _, entry in
        switch entry {
        case .parameter(let p):
            out.append(p.value.array)
            out.append(p.grad.array)
        case .buffer(let b): out.append(b.value.array)
        case .counter: break
        }
    }
    return out
}
