import Atomics
import FixedStorage

/// A single-producer, single-consumer ring of plain values with a fixed capacity, the only
/// way pipeline stages hand work to each other: no locks, no allocation after creation.
///
/// One thread calls the `push` methods and another the `pop` methods. The indices are
/// atomics with acquire/release ordering; each side keeps a private copy of the other's
/// index (on its own cache line) and only reloads it when the ring looks full (or empty).
public final class SPSCRing<Element: BitwiseCopyable>: @unchecked Sendable {
    @usableFromInline let storage: UnsafeMutablePointer<Element>
    @usableFromInline let mask: Int
    /// Next index the consumer reads (written by the consumer).
    @usableFromInline let head = ManagedAtomic<Int>(0)
    /// Next index the producer writes (written by the producer).
    @usableFromInline let tail = ManagedAtomic<Int>(0)
    /// Private indices: `[0]` producer's tail, `[1]` producer's view of head, `[16]`
    /// consumer's head, `[17]` consumer's view of tail; 128 bytes apart so the two threads
    /// never write the same cache line.
    @usableFromInline let local: FixedBuffer<Int>

    /// - Parameter capacity: rounded up to a power of two.
    public init(capacity: Int) {
        var size = 2
        while size < capacity { size <<= 1 }
        mask = size - 1
        storage = .allocate(capacity: size)
        local = FixedBuffer(repeating: 0, count: 32)
    }

    deinit {
        storage.deallocate()
    }

    public var capacity: Int { mask + 1 }

    /// Appends `value`; false when the ring is full.
    @inlinable
    public func push(_ value: Element) -> Bool {
        let t = local[0]
        if t &- local[1] > mask {
            local[1] = head.load(ordering: .acquiring)
            if t &- local[1] > mask { return false }
        }
        storage[t & mask] = value
        local[0] = t &+ 1
        tail.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Appends as many of `values` as fit, in order; returns how many.
    @inlinable
    public func push(_ values: UnsafePointer<Element>, count: Int) -> Int {
        let t = local[0]
        var room = mask &+ 1 &- (t &- local[1])
        if room < count {
            local[1] = head.load(ordering: .acquiring)
            room = mask &+ 1 &- (t &- local[1])
        }
        let n = min(room, count)
        guard n > 0 else { return 0 }
        let start = t & mask
        let first = min(n, mask &+ 1 &- start)
        (storage + start).update(from: values, count: first)
        if first < n { storage.update(from: values + first, count: n &- first) }
        local[0] = t &+ n
        tail.store(t &+ n, ordering: .releasing)
        return n
    }

    /// Takes the oldest value; nil when the ring is empty.
    @inlinable
    public func pop() -> Element? {
        let h = local[16]
        if h == local[17] {
            local[17] = tail.load(ordering: .acquiring)
            if h == local[17] { return nil }
        }
        let value = storage[h & mask]
        local[16] = h &+ 1
        head.store(h &+ 1, ordering: .releasing)
        return value
    }

    /// Takes up to `maximum` of the oldest values into `buffer`, in order; returns how
    /// many.
    @inlinable
    public func pop(into buffer: UnsafeMutablePointer<Element>, maximum: Int) -> Int {
        let h = local[16]
        if local[17] &- h < maximum { local[17] = tail.load(ordering: .acquiring) }
        let n = min(local[17] &- h, maximum)
        guard n > 0 else { return 0 }
        let start = h & mask
        let first = min(n, mask &+ 1 &- start)
        buffer.update(from: storage + start, count: first)
        if first < n { (buffer + first).update(from: storage, count: n &- first) }
        local[16] = h &+ n
        head.store(h &+ n, ordering: .releasing)
        return n
    }

    /// Takes up to `maximum` of the oldest values into `buffer`, stopping after the first
    /// one that `isLast` accepts; returns how many were taken and whether that one was
    /// among them (it is the last taken).
    @inlinable
    public func pop(
        into buffer: UnsafeMutablePointer<Element>, maximum: Int, stoppingAfter isLast: (Element) -> Bool
    ) -> (count: Int, sawLast: Bool) {
        let h = local[16]
        if local[17] &- h < maximum { local[17] = tail.load(ordering: .acquiring) }
        let available = min(local[17] &- h, maximum)
        var n = 0
        var sawLast = false
        while n < available {
            let value = storage[(h &+ n) & mask]
            buffer[n] = value
            n &+= 1
            if isLast(value) {
                sawLast = true
                break
            }
        }
        guard n > 0 else { return (0, false) }
        local[16] = h &+ n
        head.store(h &+ n, ordering: .releasing)
        return (n, sawLast)
    }

    /// Calls `body` with every value waiting, oldest first, without taking them. Only
    /// when neither side is running (after both threads were joined).
    func forEachWaiting(_ body: (Element) -> Void) {
        let h = head.load(ordering: .acquiring)
        let t = tail.load(ordering: .acquiring)
        var i = h
        while i != t {
            body(storage[i & mask])
            i &+= 1
        }
    }

    /// Number of values waiting, as the consumer sees it (exact only on the consumer).
    public var count: Int { tail.load(ordering: .acquiring) - head.load(ordering: .acquiring) }
}

/// Per-index atomic 64-bit words in one allocation, for state shared between the
/// communication thread and the allocator stages (one word per active pair, per host…).
public final class AtomicWords: @unchecked Sendable {
    @usableFromInline let storage: UnsafeMutablePointer<UInt64.AtomicRepresentation>
    public let count: Int

    public init(count: Int, initial: UInt64 = 0) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: UInt64.AtomicRepresentation(initial), count: count)
    }

    deinit { storage.deallocate() }

    @inlinable
    public subscript(_ i: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: storage + i)
    }
}

/// Per-index atomic 16-bit words in one allocation: small counters many threads read
/// often, where the cache footprint matters more than the range.
public final class AtomicHalfwords: @unchecked Sendable {
    @usableFromInline let storage: UnsafeMutablePointer<UInt16.AtomicRepresentation>
    public let count: Int

    public init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: UInt16.AtomicRepresentation(0), count: count)
    }

    deinit { storage.deallocate() }

    @inlinable
    public subscript(_ i: Int) -> UnsafeAtomic<UInt16> {
        UnsafeAtomic(at: storage + i)
    }
}
