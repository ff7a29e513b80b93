import FixedStorage
import TestSupport
import Testing

/// A key with a tie-break, as the simulator's events have: pops must come out sorted.
private struct Keyed: HeapOrdered, Equatable {
    var key: UInt64
    var sequence: UInt32
    static func precedes(_ a: Keyed, _ b: Keyed) -> Bool {
        a.key < b.key || (a.key == b.key && a.sequence < b.sequence)
    }
}

@Suite struct BinaryHeapTests {
    @Test func popsInOrderThroughInterleavedPushesAndGrowth() {
        var random = TestRandom(seed: 7)
        var heap = BinaryHeap<Keyed>(capacity: 2, placeholder: Keyed(key: 0, sequence: 0))
        var model: [Keyed] = []
        var sequence: UInt32 = 0
        for _ in 0..<5_000 {
            if random.chance(0.6) || model.isEmpty {
                // Few distinct keys, so ties are common and the tie-break decides.
                let value = Keyed(key: UInt64(random.below(50)), sequence: sequence)
                sequence += 1
                heap.push(value)
                model.append(value)
            } else {
                let least = model.indices.min { Keyed.precedes(model[$0], model[$1]) }!
                #expect(heap.pop() == model.remove(at: least))
            }
            #expect(heap.count == model.count)
        }
        #expect(heap.capacity >= model.count)
        var previous: Keyed?
        while let value = heap.pop() {
            if let previous { #expect(Keyed.precedes(previous, value)) }
            previous = value
        }
        #expect(heap.isEmpty && heap.first == nil)
    }

    @Test func fullHeapSaysSoBeforeItWouldGrow() {
        var heap = BinaryHeap<Keyed>(capacity: 3, placeholder: Keyed(key: 0, sequence: 0))
        for k in [UInt64(3), 1, 2] { heap.push(Keyed(key: k, sequence: 0)) }
        #expect(heap.isFull && heap.capacity == 3)
        #expect(heap.first?.key == 1)
        heap.removeAll()
        #expect(heap.isEmpty && heap.capacity == 3)
    }
}

@Suite struct FixedBufferTests {
    @Test func holdsWhatIsWrittenAndFills() {
        let buffer = FixedBuffer<UInt32>(repeating: 7, count: 100)
        #expect(buffer.count == 100 && buffer.buffer.allSatisfy { $0 == 7 })
        for i in 0..<100 { buffer[i] = UInt32(i) }
        buffer[5] &+= 10
        #expect(buffer[5] == 15 && buffer[99] == 99)
        buffer.fill(with: 1)
        #expect(buffer.buffer.reduce(0, +) == 100)
    }

    @Test func honoursAlignmentAndEmptyBuffers() {
        let aligned = FixedBuffer<UInt8>(repeating: 0, count: 3000, alignment: 64)
        #expect(Int(bitPattern: aligned.base) % 64 == 0)
        let empty = FixedBuffer<Int>(repeating: 0, count: 0)
        #expect(empty.count == 0 && empty.buffer.isEmpty)
    }
}
