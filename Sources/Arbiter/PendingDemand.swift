import FixedStorage

/// Demand a packet brought, gathered to be handed to the allocator together once the
/// session is done with it, so that the allocator looks the pairs up a few ahead.
struct PendingDemand: ~Copyable {
    static let capacity = 256
    private let buffer: FixedBuffer<DemandRequest>
    private var count = 0

    init() {
        buffer = FixedBuffer(repeating: DemandRequest(source: 0, destination: 0, slots: 0), count: Self.capacity)
    }

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == Self.capacity }

    /// Adds a request; there must be room.
    @inline(__always)
    mutating func append(_ request: DemandRequest) {
        buffer[count] = request
        count += 1
    }

    /// The requests gathered, in order, which are forgotten: valid until the next
    /// ``append(_:)``.
    mutating func takeAll() -> UnsafeMutableBufferPointer<DemandRequest> {
        let all = UnsafeMutableBufferPointer(start: buffer.base, count: count)
        count = 0
        return all
    }
}
