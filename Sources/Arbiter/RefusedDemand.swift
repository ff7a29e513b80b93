/// Demand the allocator's pair table refused, kept in order to be offered again, up to a
/// fixed number of entries.
struct RefusedDemand: ~Copyable {
    private let sources: UnsafeMutablePointer<Int32>
    private let destinations: UnsafeMutablePointer<Int32>
    private let slots: UnsafeMutablePointer<UInt32>
    private let capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        sources = .allocate(capacity: capacity)
        sources.initialize(repeating: 0, count: capacity)
        destinations = .allocate(capacity: capacity)
        destinations.initialize(repeating: 0, count: capacity)
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
    }

    deinit {
        sources.deallocate()
        destinations.deallocate()
        slots.deallocate()
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
