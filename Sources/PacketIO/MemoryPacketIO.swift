import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A ``PacketIO`` in memory: what a test hands it with ``deliver(_:from:)`` is received,
/// and what the owner sends is kept for ``takeSent()``. A daemon's loop runs over it as
/// over a socket, so the loop itself can be tested without a network, a namespace or root
/// (the idea of swift-nio's `EmbeddedChannel`).
///
/// Shared between the test's thread and the loop's, under a mutex: for tests, not for a
/// data path.
public final class MemoryPacketIO: PacketIO, Sendable {
    private struct State {
        var inbound: [(address: UInt32, payload: [UInt8])] = []
        var head = 0
        var outbound: [(address: UInt32, payload: [UInt8])] = []
        var statistics = PacketIOStatistics()
    }
    private let state = Mutex(State())

    public init() {}

    /// Queues `payload` (an FCP packet, no IPv4 header) as received from `address` (host
    /// byte order).
    public func deliver(_ payload: [UInt8], from address: UInt32) {
        state.withLock { $0.inbound.append((address, payload)) }
    }

    /// What was sent since the last call, in order: (destination, payload).
    public func takeSent() -> [(address: UInt32, payload: [UInt8])] {
        state.withLock { s in
            defer { s.outbound.removeAll() }
            return s.outbound
        }
    }

    public var statistics: PacketIOStatistics { state.withLock { $0.statistics } }

    public func receive(into batch: inout PacketBatch, waitingUpTo timeoutNanoseconds: Int64) throws(PacketIOError)
        -> Int
    {
        batch.removeAll()
        var n = take(into: &batch)
        if n == 0 && timeoutNanoseconds != 0 {
            // Nothing queued: wait a little, as a socket would, instead of spinning.
            let wait = timeoutNanoseconds < 0 ? 200_000 : min(timeoutNanoseconds, 200_000)
            var t = timespec(tv_sec: 0, tv_nsec: Int(wait))
            nanosleep(&t, nil)
            n = take(into: &batch)
        }
        return n
    }

    private func take(into batch: inout PacketBatch) -> Int {
        state.withLock { s in
            s.statistics.receiveBatches &+= 1
            while s.head < s.inbound.count && !batch.isFull {
                let (address, payload) = s.inbound[s.head]
                s.head += 1
                guard payload.count <= batch.stride else {
                    s.statistics.tooLong &+= 1
                    continue
                }
                let i = batch.count
                payload.withUnsafeBytes {
                    (batch.storage + i * batch.stride).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
                }
                batch.lengths[i] = Int32(payload.count)
                batch.offsets[i] = 0
                batch.addresses[i] = address
                batch.arrivals[i] = 0
                batch.count += 1
                s.statistics.received &+= 1
            }
            if s.head == s.inbound.count {
                s.inbound.removeAll(keepingCapacity: true)
                s.head = 0
            }
            return batch.count
        }
    }

    public func send(_ batch: inout PacketBatch) throws(PacketIOError) -> Int {
        let n = batch.count
        state.withLock { s in
            for i in 0..<n {
                let p = batch.payload(i)
                s.outbound.append((batch.address(i), Array(p)))
            }
            s.statistics.sent &+= UInt64(n)
            s.statistics.sendBatches &+= 1
        }
        batch.removeAll()
        return n
    }
}
