import FixedStorage

/// A batch of datagrams in buffers allocated once, for receiving and sending without
/// allocating per packet.
///
/// Buffer `i` holds one datagram; its payload starts `offset(i)` bytes in (received IPv4
/// packets keep their header in front of it) and is `length(i)` bytes long. Addresses are
/// IPv4, host byte order.
public struct PacketBatch: ~Copyable {
    /// Datagrams the batch holds at most.
    public let capacity: Int
    /// Bytes per buffer: the largest datagram it holds.
    public let stride: Int
    let bytes: FixedBuffer<UInt8>
    let lengths: FixedBuffer<Int32>
    let offsets: FixedBuffer<Int32>
    let addresses: FixedBuffer<UInt32>
    /// Kernel receive times (CLOCK_REALTIME ns; 0: none).
    let arrivals: FixedBuffer<UInt64>
    /// Datagrams in the batch.
    public internal(set) var count = 0

    /// A batch of `capacity` buffers (at most ``PacketBatch/maximumCapacity``) of `stride` bytes.
    public init(capacity: Int, stride: Int = 2048) {
        precondition(capacity > 0 && capacity <= Self.maximumCapacity && stride >= 64)
        self.capacity = capacity
        self.stride = stride
        bytes = FixedBuffer(repeating: 0, count: capacity * stride, alignment: 64)
        lengths = FixedBuffer(repeating: 0, count: capacity)
        offsets = FixedBuffer(repeating: 0, count: capacity)
        addresses = FixedBuffer(repeating: 0, count: capacity)
        arrivals = FixedBuffer(repeating: 0, count: capacity)
    }

    /// The buffers, `stride` bytes apart.
    @inline(__always)
    var storage: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bytes.base) }

    /// The most datagrams one batch call moves (the kernel calls' limit in this package).
    public static let maximumCapacity = 64

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count == capacity }

    /// Datagram `i`'s payload.
    public func payload(_ i: Int) -> UnsafeRawBufferPointer {
        precondition(i >= 0 && i < count)
        return UnsafeRawBufferPointer(start: storage + i * stride + Int(offsets[i]), count: Int(lengths[i]))
    }

    /// What precedes datagram `i`'s payload in its buffer: a received packet's IPv4 header.
    public func header(_ i: Int) -> UnsafeRawBufferPointer {
        precondition(i >= 0 && i < count)
        return UnsafeRawBufferPointer(start: storage + i * stride, count: Int(offsets[i]))
    }

    /// Datagram `i`'s address: where it came from (received) or where it goes (to send).
    public func address(_ i: Int) -> UInt32 {
        precondition(i >= 0 && i < count)
        return addresses[i]
    }

    /// When the kernel received datagram `i` (CLOCK_REALTIME ns), where the I/O was asked
    /// to stamp arrivals (``RawIPv4Socket/enableReceiveTimestamps()``); nil otherwise.
    public func arrivalTime(_ i: Int) -> UInt64? {
        precondition(i >= 0 && i < count)
        return arrivals[i] == 0 ? nil : arrivals[i]
    }

    /// Empties the batch (the buffers stay).
    public mutating func removeAll() { count = 0 }

    /// Adds the datagram `write` builds in the next buffer, returning its address and
    /// length (nil: it had nothing to send). Returns whether one was added; the caller
    /// checks ``isFull`` first.
    @inline(__always)
    public mutating func append(_ write: (UnsafeMutableRawBufferPointer) -> (address: UInt32, length: Int)?) -> Bool {
        precondition(count < capacity)
        let buffer = UnsafeMutableRawBufferPointer(start: storage + count * stride, count: stride)
        guard let (address, n) = write(buffer), n > 0, n <= stride else { return false }
        lengths[count] = Int32(n)
        offsets[count] = 0
        addresses[count] = address
        count += 1
        return true
    }
}
