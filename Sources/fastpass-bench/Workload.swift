import FastpassArbiter
import FixedStorage
import Foundation
import SeededRandom

extension SplitMix64 {
    /// The benchmarks' generator for `seed` (their seeding since the first benchmark, so
    /// the workloads, and the recorded figures, stay the same).
    init(benchmarkSeed seed: UInt64) { self.init(state: seed &* 0x9E37_79B9_7F4A_7C15 &+ 1) }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    mutating func unitAboveZero() -> Double { (Double(next() >> 11) + 1) / 9_007_199_254_740_992.0 }

    /// Exponentially distributed with the given mean (the benchmarks' form).
    mutating func exponentialDraw(mean: Double) -> Double { -mean * log(unitAboveZero()) }
}

/// The reference arbiter's benchmark workload, generated before timing: every node gets
/// Poisson request arrivals with mean gap `10 / load` slots, each asking for an
/// exponentially distributed number of slots with mean 10 (rounded down, the fraction
/// carried to the node's next request), towards a uniformly chosen other node.
struct ReferenceWorkload {
    /// Requests ordered by arrival: source, destination, slots.
    var sources: [UInt16] = []
    var destinations: [UInt16] = []
    var sizes: [UInt32] = []
    /// `batchStart[b]`: first request arriving at or after the start of batch b (and
    /// before the start of batch b + 1); one extra entry at the end.
    var batchStart: [Int] = []
    var offeredSlots: UInt64 = 0

    init(nodes: Int, load: Double, batchSize: Int, batches: Int, seed: UInt64) {
        precondition(nodes >= 2 && nodes <= 65_536 && load > 0)
        var random = SplitMix64(benchmarkSeed: seed)
        let meanGap = 10 / load
        let horizon = Double(batches * batchSize)
        // Per node arrival times, merged by sweeping batch by batch.
        var nextArrival = (0..<nodes).map { _ in random.exponentialDraw(mean: meanGap) }
        var carry = [Double](repeating: 0, count: nodes)
        let expected = Int(Double(nodes) * horizon / meanGap * 1.05) + 16
        sources.reserveCapacity(expected)
        destinations.reserveCapacity(expected)
        sizes.reserveCapacity(expected)
        batchStart.reserveCapacity(batches + 1)
        var pendingSource: [Int] = []
        var pendingTime: [Double] = []
        for b in 0..<batches {
            batchStart.append(sources.count)
            let end = Double((b + 1) * batchSize)
            pendingSource.removeAll(keepingCapacity: true)
            pendingTime.removeAll(keepingCapacity: true)
            for n in 0..<nodes {
                while nextArrival[n] < end {
                    pendingSource.append(n)
                    pendingTime.append(nextArrival[n])
                    nextArrival[n] += random.exponentialDraw(mean: meanGap)
                }
            }
            // Arrival order within the batch window.
            let order = pendingTime.indices.sorted { pendingTime[$0] < pendingTime[$1] }
            for i in order {
                let n = pendingSource[i]
                let amount = random.exponentialDraw(mean: 10) + carry[n]
                let whole = amount.rounded(.down)
                carry[n] = amount - whole
                var d = random.below(nodes - 1)
                if d >= n { d += 1 }
                guard whole >= 1 else { continue }
                sources.append(UInt16(n))
                destinations.append(UInt16(d))
                sizes.append(UInt32(min(whole, Double(UInt32.max))))
                offeredSlots += UInt64(whole)
            }
        }
        batchStart.append(sources.count)
        _ = horizon
    }
}

/// A workload's requests in the allocator's request form, made before timing, handed over a
/// batch window at a time as the arbiter core hands over a packet's requests: copied into
/// a scratch buffer (the allocator moves refused requests to its front) and added with
/// ``TimeslotAllocator/addDemand(_:)``. Sendable for the pipeline's feed, which only one
/// stage thread runs at a time (it holds the feed token).
final class RequestWindows: @unchecked Sendable {
    let all: FixedBuffer<DemandRequest>
    let scratch: FixedBuffer<DemandRequest>
    let batchStart: [Int]

    init(_ workload: ReferenceWorkload) {
        let n = workload.sources.count
        all = FixedBuffer(repeating: DemandRequest(source: 0, destination: 0, slots: 0), count: max(n, 1))
        for i in 0..<n {
            all[i] = DemandRequest(
                source: Int(workload.sources[i]), destination: Int(workload.destinations[i]), slots: workload.sizes[i])
        }
        var widest = 1
        for b in 1..<max(workload.batchStart.count, 1) {
            widest = max(widest, workload.batchStart[b] - workload.batchStart[b - 1])
        }
        scratch = FixedBuffer(repeating: DemandRequest(source: 0, destination: 0, slots: 0), count: widest)
        batchStart = workload.batchStart
    }

    /// The requests arriving during batch `b`, in the scratch buffer.
    @inline(__always)
    private func window(_ b: Int) -> UnsafeMutableBufferPointer<DemandRequest> {
        let start = batchStart[b]
        let count = batchStart[b + 1] - start
        let window = UnsafeMutableBufferPointer(rebasing: scratch.buffer[0..<count])
        _ = window.update(fromContentsOf: all.buffer[start..<(start + count)])
        return window
    }

    /// Adds the requests arriving during batch `b`; returns how many were refused.
    @inline(__always)
    func add(batch b: Int, to allocator: TimeslotAllocator) -> Int { allocator.addDemand(window(b)) }

    /// The same for the pipeline's feed.
    @inline(__always)
    func add(batch b: Int, to demand: PipelineDemand) -> Int { demand.addDemand(window(b)) }
}
