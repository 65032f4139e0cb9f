import Dispatch
import Foundation

/// Runs `body` over fixed blocks of `0..<count` on all cores and returns the per-block results in block order.
/// Blocks depend only on `count` and `blockSize`, never on the number of cores, so reductions over the results
/// are deterministic.
func parallelBlocks<T>(count: Int, blockSize: Int, _ body: (Range<Int>) -> T) -> [T] {
    let blocks = max(1, (count + blockSize - 1) / blockSize)
    if blocks == 1 { return [body(0..<count)] }
    return withoutActuallyEscaping(body) { body in
        let results = UnsafeMutableBufferPointer<T?>.allocate(capacity: blocks)
        results.initialize(repeating: nil)
        defer {
            results.deinitialize()
            results.deallocate()
        }
        let box = UncheckedBox(body)
        let slots = UncheckedBox(results)
        DispatchQueue.concurrentPerform(iterations: blocks) { block in
            let range = (block * blockSize)..<min(count, (block + 1) * blockSize)
            slots.value[block] = box.value(range)
        }
        return results.map { $0! }
    }
}

/// Runs `body(k)` for `k` in `0..<count` on all cores.
func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    if count == 1 {
        body(0)
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: count) { box.value($0) }
    }
}

/// Carries a non-Sendable value into `concurrentPerform`, whose iterations touch disjoint parts of it.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Seconds since an arbitrary start, for rates.
func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
