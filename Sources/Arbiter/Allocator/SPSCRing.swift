import Atomics

/// A single-producer, single-consumer ring of plain values with a fixed capacity, the only
/// way pipeline stages hand work to each other: no locks, no allocation after creation.
///
/// One thread calls the `push` methods and another the `pop` methods. The indices are
/// atomics with acquire/release ordering; each side keeps a private copy of the other's
/// index and only reloads it when the ring looks full (or empty).
public final class SPSCRing<Element: BitwiseCopyable>: @unchecked Sendable {
    @usableFromInline let storage: UnsafeMutablePointer<Element>
    @usableFromInline let mask: Int
    /// Next index the consumer reads (written by the consumer).
    @usableFromInline let head = ManagedAtomic<Int>(0)
    /// Next index the producer writes (written by the producer).
    @usableFromInline let tail = ManagedAtomic<Int>(0)
    @usableFromInline var producerHead = 0
    @usableFromInline var producerTail = 0
    @usableFromInline var consumerHead = 0
    @usableFromInline var consumerTail = 0

    /// - Parameter capacity: rounded up to a power of two.
    public init(capacity: Int) {
        var size = 2
        while size < capacity { size <<= 1 }
        mask = size - 1
        storage = .allocate(capacity: size)
    }

    deinit { storage.deallocate() }

    public var capacity: Int { mask + 1 }

    /// Appends `value`; false when the ring is full.
    @inlinable
    public func push(_ value: Element) -> Bool {
        if producerTail - producerHead > mask {
            producerHead = head.load(ordering: .acquiring)
            if producerTail - producerHead > mask { return false }
        }
        storage[producerTail & mask] = value
        producerTail &+= 1
        tail.store(producerTail, ordering: .releasing)
        return true
    }

    /// Takes the oldest value; nil when the ring is empty.
    @inlinable
    public func pop() -> Element? {
        if consumerHead == consumerTail {
            consumerTail = tail.load(ordering: .acquiring)
            if consumerHead == consumerTail { return nil }
        }
        let value = storage[consumerHead & mask]
        consumerHead &+= 1
        head.store(consumerHead, ordering: .releasing)
        return value
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
