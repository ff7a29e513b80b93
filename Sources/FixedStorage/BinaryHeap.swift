/// How a value orders itself on a ``BinaryHeap``.
public protocol HeapOrdered: BitwiseCopyable {
    /// Whether `a` comes off the heap before `b`. A strict order: false for equals.
    static func precedes(_ a: Self, _ b: Self) -> Bool
}

/// A binary min-heap of plain values in one ``FixedBuffer``: the arbiter's session timers
/// and the simulator's event queue.
///
/// Which of two values that neither precedes comes off first depends on the order of
/// pushes and pops, always the same way (the simulator's byte-identical runs rely on it),
/// so give values a tie-break where the order matters.
///
/// Pushing onto a full heap doubles its storage, an allocation: a user that must not
/// allocate checks ``isFull`` first and makes room itself.
@frozen
public struct BinaryHeap<Element: HeapOrdered>: ~Copyable {
    @usableFromInline var storage: FixedBuffer<Element>
    @usableFromInline var filled = 0
    /// Values on the heap.
    @inlinable public var count: Int { filled }

    /// An empty heap with room for `capacity` values (at least one).
    @inlinable
    public init(capacity: Int, placeholder: Element) {
        storage = FixedBuffer(repeating: placeholder, count: max(capacity, 1))
    }

    @inlinable public var isEmpty: Bool { filled == 0 }
    @inlinable public var isFull: Bool { filled == storage.count }
    @inlinable public var capacity: Int { storage.count }

    /// The value that comes off next.
    @inlinable
    public var first: Element? { filled > 0 ? storage[0] : nil }

    /// Forgets every value (capacity stays).
    @inlinable
    public mutating func removeAll() { filled = 0 }

    @inlinable
    public mutating func push(_ value: Element) {
        if filled == storage.count { grow() }
        var i = filled
        filled += 1
        while i > 0 {
            let parent = (i - 1) >> 1
            guard Element.precedes(value, storage[parent]) else { break }
            storage[i] = storage[parent]
            i = parent
        }
        storage[i] = value
    }

    /// Takes the first value off the heap.
    @inlinable
    public mutating func pop() -> Element? {
        guard filled > 0 else { return nil }
        let top = storage[0]
        filled -= 1
        guard filled > 0 else { return top }
        let last = storage[filled]
        var i = 0
        while true {
            let left = 2 * i + 1
            guard left < filled else { break }
            let right = left + 1
            let child = right < filled && Element.precedes(storage[right], storage[left]) ? right : left
            guard Element.precedes(storage[child], last) else { break }
            storage[i] = storage[child]
            i = child
        }
        storage[i] = last
        return top
    }

    @usableFromInline
    mutating func grow() {
        let larger = FixedBuffer(repeating: storage[0], count: storage.count * 2)
        larger.base.update(from: storage.base, count: filled)
        storage = larger
    }
}
