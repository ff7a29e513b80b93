/// One step of interpreting ALLOC slot descriptors.
public enum AllocDescriptorStep: Sendable, Hashable {
    /// Slot `slot` goes to destination number `destinationIndex` (1-based) of the payload.
    case allocation(byteIndex: Int, slot: UInt64, destinationIndex: Int)
    /// A skip byte moved the slot pointer forward to `slotAfter` without an allocation.
    case skip(byteIndex: Int, slotAfter: UInt64)
    /// A descriptor named a destination the payload does not list; the rest of the
    /// payload is not interpreted (the reference stops there too).
    case illegalIndex(byteIndex: Int, destinationIndex: Int)
}

/// Walks ALLOC slot descriptors from the payload's (widened) base.
///
/// Each byte is either `index << 4 | (gap - 1)`: the slot `gap` (1–16) after the previous
/// one goes to destination `index`; or, with index 0, a skip of `16 · (low nibble + 1)`
/// slots. Every index is checked against the destination count, so any byte string is
/// safe to walk.
public struct AllocDescriptorWalker: IteratorProtocol {
    public private(set) var slot: UInt64
    let descriptors: UnsafeRawBufferPointer
    let destinationCount: Int
    var index = 0

    public init(baseSlot: UInt64, destinationCount: Int, descriptors: UnsafeRawBufferPointer) {
        self.slot = baseSlot
        self.destinationCount = destinationCount
        self.descriptors = descriptors
    }

    public mutating func next() -> AllocDescriptorStep? {
        guard index < descriptors.count else { return nil }
        let byteIndex = index
        let byte = descriptors[byteIndex]
        let destinationIndex = Int(byte >> 4)
        let step = UInt64(byte & 0xF) + 1
        if destinationIndex == 0 {
            index += 1
            slot &+= 16 * step
            return .skip(byteIndex: byteIndex, slotAfter: slot)
        }
        guard destinationIndex <= destinationCount else {
            index = descriptors.count
            return .illegalIndex(byteIndex: byteIndex, destinationIndex: destinationIndex)
        }
        index += 1
        slot &+= step
        return .allocation(byteIndex: byteIndex, slot: slot, destinationIndex: destinationIndex)
    }
}

/// One ALLOC payload's worth of allocations, ready for ``FCPPacketWriter/writeAlloc(_:)``.
public struct AllocBlock: Sendable {
    /// The wire base: `(first slot - 1) / 16`, low 16 bits.
    public var baseField: UInt16 = 0
    public private(set) var destinationCount = 0
    public private(set) var descriptorCount = 0
    var destinationStorage = InlineArray<15, UInt16>(repeating: 0)
    var countStorage = InlineArray<15, Int>(repeating: 0)
    var descriptorStorage = InlineArray<126, UInt8>(repeating: 0)

    public init() {}

    public var isEmpty: Bool { descriptorCount == 0 }

    /// Raw destination `i` (path id in bits 15–14).
    public func destination(_ i: Int) -> UInt16 { destinationStorage[i] }
    /// Slots allocated to destination `i` in this block.
    public func slotCount(_ i: Int) -> Int { countStorage[i] }
    /// Descriptor byte `i`.
    public func descriptor(_ i: Int) -> UInt8 { descriptorStorage[i] }

    mutating func clear() {
        baseField = 0
        destinationCount = 0
        descriptorCount = 0
    }

    mutating func appendDescriptor(_ byte: UInt8) {
        descriptorStorage[descriptorCount] = byte
        descriptorCount += 1
    }

    /// Index of `destination` in the list, adding it if there is room; nil when full.
    mutating func destinationIndex(_ destination: UInt16) -> Int? {
        if let i = existingIndex(destination) { return i }
        guard destinationCount < FCPWire.maxAllocDestinations else { return nil }
        destinationStorage[destinationCount] = destination
        countStorage[destinationCount] = 0
        destinationCount += 1
        return destinationCount - 1
    }

    func existingIndex(_ destination: UInt16) -> Int? {
        var i = 0
        while i < destinationCount {
            if destinationStorage[i] == destination { return i }
            i += 1
        }
        return nil
    }

    /// Runs `body` with the descriptor bytes.
    public func withDescriptors<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: descriptorStorage) { all in
            body(UnsafeRawBufferPointer(rebasing: all[0..<descriptorCount]))
        }
    }
}

extension FCPPacketWriter {
    /// Writes an ``AllocBlock`` as an ALLOC payload.
    public mutating func writeAlloc(_ block: AllocBlock) throws(FCPEncodeError) {
        let count = block.destinationCount
        let destinations = block.destinationStorage
        try withUnsafeBytes(of: block.descriptorStorage) { (all) throws(FCPEncodeError) in
            try writeAlloc(
                baseField: block.baseField, destinationCount: count, destination: { destinations[$0] },
                descriptors: UnsafeRawBufferPointer(rebasing: all[0..<block.descriptorCount]))
        }
    }
}

/// The arbiter's allocations for one endpoint that have not been sent yet: a window of
/// the last 192 slots, each marked with its (raw, path-carrying) destination.
///
/// Allocations older than the window fall off unsent (an endpoint would reject them as
/// too late anyway); ``takeBlock(into:maxDescriptorBytes:)`` packs the oldest pending ones
/// into one ALLOC payload. Unlike the reference encoder it never lists a destination
/// twice, never ends a payload on a dangling skip byte, and respects the byte budget the
/// caller has left in the packet.
public struct PendingAllocations {
    /// Slots the window spans (reference `FASTPASS_WND_LEN`).
    public static let windowLength: UInt64 = 192
    /// The reference caps descriptors at 64 bytes per payload.
    public static let referenceMaxDescriptorBytes = 64

    /// Latest slot the window has advanced to.
    public private(set) var head: UInt64
    private var marked = InlineArray<4, UInt64>(repeating: 0)
    private var destinations = InlineArray<256, UInt16>(repeating: 0)
    /// Allocations waiting to be sent.
    public private(set) var count = 0

    public init(head: UInt64) { self.head = head }

    public var isEmpty: Bool { count == 0 }

    @inline(__always)
    private static func position(_ slot: UInt64) -> (word: Int, bit: UInt64, index: Int) {
        let index = Int(truncatingIfNeeded: slot & 255)
        return (index >> 6, UInt64(index & 63), index)
    }

    private func isMarked(_ slot: UInt64) -> Bool {
        let p = Self.position(slot)
        return marked[p.word] & (1 << p.bit) != 0
    }

    private mutating func unmark(_ slot: UInt64) {
        let p = Self.position(slot)
        if marked[p.word] & (1 << p.bit) != 0 {
            marked[p.word] &= ~(1 << p.bit)
            count -= 1
        }
    }

    /// Oldest pending slot at or after `slot`, searching up to the head.
    private func firstMarked(atOrAfter start: UInt64) -> UInt64? {
        guard count > 0 else { return nil }
        let edge = head &- (Self.windowLength - 1)
        var s = Wrapping.before(start, edge) ? edge : start
        while Wrapping.beforeOrEqual(s, head) {
            let p = Self.position(s)
            let bits = marked[p.word] >> p.bit
            if bits != 0 {
                let found = s &+ UInt64(bits.trailingZeroBitCount)
                return Wrapping.beforeOrEqual(found, head) ? found : nil
            }
            s &+= 64 &- p.bit
        }
        return nil
    }

    /// The oldest pending slot.
    public var earliest: UInt64? { firstMarked(atOrAfter: head &- (Self.windowLength - 1)) }

    /// Why an allocation was not added.
    public enum AddResult: Sendable, Hashable {
        case added
        /// Older than the window.
        case tooOld
        /// That slot already has a pending allocation.
        case slotTaken
    }

    /// Adds an allocation of `slot` to `destination`. Advancing the window to a later slot
    /// drops pending allocations that fall out of it; `fellOff` hears of each, newest first.
    public mutating func add(
        slot: UInt64, destination: UInt16, fellOff: (_ slot: UInt64, _ destination: UInt16) -> Void = { _, _ in }
    ) -> AddResult {
        if Wrapping.after(slot, head) {
            // Everything at or before slot - 192 leaves the window.
            let limit = slot &- Self.windowLength
            var cursor = Wrapping.before(head, limit) ? head : limit
            while count > 0, let old = lastMarked(atOrBefore: cursor) {
                fellOff(old, destinations[Self.position(old).index])
                unmark(old)
                cursor = old &- 1
            }
            head = slot
        } else if Wrapping.beforeOrEqual(slot, head &- Self.windowLength) {
            return .tooOld
        } else if isMarked(slot) {
            return .slotTaken
        }
        let p = Self.position(slot)
        marked[p.word] |= 1 << p.bit
        destinations[p.index] = destination
        count += 1
        return .added
    }

    /// Newest pending slot at or before `slot` that is still inside the window.
    private func lastMarked(atOrBefore slot: UInt64) -> UInt64? {
        let edge = head &- (Self.windowLength - 1)
        var s = slot
        while Wrapping.afterOrEqual(s, edge) && Wrapping.beforeOrEqual(s, head) {
            if isMarked(s) { return s }
            s &-= 1
        }
        return nil
    }

    /// Drops every pending allocation (after a protocol reset they are meaningless).
    public mutating func removeAll() {
        marked = .init(repeating: 0)
        count = 0
    }

    /// Moves the oldest pending allocations into `block` as one ALLOC payload.
    ///
    /// - Parameter maxDescriptorBytes: the descriptor budget (even, at most 126); the
    ///   reference's 64 keeps packets within its 154-byte limit next to RESET and reports.
    /// - Returns: the number of allocations taken.
    @discardableResult
    public mutating func takeBlock(into block: inout AllocBlock, maxDescriptorBytes: Int = referenceMaxDescriptorBytes) -> Int {
        block.clear()
        let budget = min(FCPWire.maxAllocDescriptorBytes, max(0, maxDescriptorBytes)) & ~1
        guard budget >= 2, var slot = earliest else { return 0 }
        var previous = (slot &- 1) & ~15
        block.baseField = UInt16(truncatingIfNeeded: previous >> 4)
        var taken = 0
        while true {
            var gap = slot &- previous
            let destination = destinations[Self.position(slot).index]
            let needsSkip = gap > 16
            guard block.descriptorCount + (needsSkip ? 2 : 1) <= budget else { break }
            guard let index = block.destinationIndex(destination) else { break }
            if needsSkip {
                let skip = (gap - 1) / 16
                block.appendDescriptor(UInt8(truncatingIfNeeded: skip - 1))
                gap -= 16 * skip
            }
            block.appendDescriptor(UInt8(truncatingIfNeeded: (index + 1) << 4) | UInt8(truncatingIfNeeded: gap - 1))
            block.countStorage[index] += 1
            unmark(slot)
            taken += 1
            guard let next = firstMarked(atOrAfter: slot &+ 1) else { break }
            previous = slot
            slot = next
        }
        if block.descriptorCount & 1 == 1 {
            // A trailing 0x00 is a skip past the last allocation: harmless, and it makes
            // the byte count even as the pair-counting type word requires.
            block.appendDescriptor(0)
        }
        return taken
    }
}
