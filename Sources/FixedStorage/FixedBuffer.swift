/// A fixed number of plain values in memory allocated once, freed when the buffer goes.
///
/// The hot paths keep their tables in memory they allocate at start-up and index without
/// bounds checks or reference counting. Written by hand, every such table needed an
/// `allocate`, an `initialize` and a `deallocate` in a `deinit` kept in step with it. This
/// type owns the memory instead: it cannot be copied, so exactly one owner frees it.
///
/// Indexing checks bounds in debug builds only (`assert`), so tests catch what release
/// builds would silently corrupt, at no cost in release. Elements are trivially copyable,
/// so nothing needs deinitialising.
///
/// Keep it in a `let` of its owner: writes go through the element pointer (`nonmutating`),
/// so a class holding it pays no exclusivity check per access.
@frozen
public struct FixedBuffer<Element: BitwiseCopyable>: ~Copyable {
    /// The first element; valid while the buffer lives.
    public let base: UnsafeMutablePointer<Element>
    /// Elements the buffer holds.
    public let count: Int

    /// `count` elements, each `value`, aligned to `alignment` bytes at least.
    @inlinable
    public init(repeating value: Element, count: Int, alignment: Int = MemoryLayout<Element>.alignment) {
        precondition(count >= 0, "FixedBuffer: negative count \(count)")
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Element>.stride,
            alignment: max(alignment, MemoryLayout<Element>.alignment))
        base = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        base.initialize(repeating: value, count: count)
        self.count = count
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }

    @inlinable
    public subscript(index: Int) -> Element {
        unsafeAddress {
            assert(index >= 0 && index < count, "FixedBuffer: index \(index) outside 0..<\(count)")
            return UnsafePointer(base + index)
        }
        nonmutating unsafeMutableAddress {
            assert(index >= 0 && index < count, "FixedBuffer: index \(index) outside 0..<\(count)")
            return base + index
        }
    }

    /// All elements, for the standard library's bulk operations (`update(repeating:)`, sorting).
    @inlinable
    public var buffer: UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: base, count: count)
    }

    /// Sets every element to `value`.
    @inlinable
    public func fill(with value: Element) {
        base.update(repeating: value, count: count)
    }
}
