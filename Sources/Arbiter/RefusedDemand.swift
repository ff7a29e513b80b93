import FixedStorage

/// Demand the allocator's pair table refused, kept in order to be offered again, up to a
/// fixed number of entries.
struct RefusedDemand: ~Copyable {
    private let sources: FixedBuffer<Int32>
    private let destinations: FixedBuffer<Int32>
    private let slots: FixedBuffer<UInt32>
    private let capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        sources = FixedBuffer(repeating: 0, count: capacity)
        destinations = FixedBuffer(repeating: 0, count: capacity)
        slots = FixedBuffer(repeating: 0, count: capacity)
    }

    var isEmpty: Bool { count == 0 }

    /// Keeps `slots` of demand from `source` to `destination`; false when full.
    mutating func append(source: Int, destination: Int, slots: UInt32) -> Bool {
        guard count < capacity else { return false }
        sources[count] = Int32(source)
        destinations[count] = Int32(destination)
        self.slots[count] = slots
        count += 1
        return true
    }

    /// Removes the entries `shouldRemove` (source, destination, slots) picks, calling it
    /// once for each entry in order; the others keep their order.
    mutating func removeAll(where shouldRemove: (Int, Int, UInt32) -> Bool) {
        var kept = 0
        for i in 0..<count {
            if shouldRemove(Int(sources[i]), Int(destinations[i]), slots[i]) { continue }
            sources[kept] = sources[i]
            destinations[kept] = destinations[i]
            slots[kept] = slots[i]
            kept += 1
        }
        count = kept
    }
}
