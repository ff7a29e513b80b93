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
@frozen
public struct AllocDescriptorWalker: IteratorProtocol {
    /// The slot the walk has reached.
    public var slot: UInt64 { current }
    @usableFromInline var current: UInt64
    @usableFromInline let descriptors: UnsafeRawBufferPointer
    @usableFromInline let destinationCount: Int
    @usableFromInline var index = 0

    @inlinable
    public init(baseSlot: UInt64, destinationCount: Int, descriptors: UnsafeRawBufferPointer) {
        self.current = baseSlot
        self.destinationCount = destinationCount
        self.descriptors = descriptors
    }

    @inlinable
    public mutating func next() -> AllocDescriptorStep? {
        guard index < descriptors.count else { return nil }
        let byteIndex = index
        let byte = descriptors[byteIndex]
        let destinationIndex = Int(byte >> 4)
        let step = UInt64(byte & 0xF) + 1
        if destinationIndex == 0 {
            index += 1
            current &+= 16 * step
            return .skip(byteIndex: byteIndex, slotAfter: current)
        }
        guard destinationIndex <= destinationCount else {
            index = descriptors.count
            return .illegalIndex(byteIndex: byteIndex, destinationIndex: destinationIndex)
        }
        index += 1
        current &+= step
        return .allocation(byteIndex: byteIndex, slot: current, destinationIndex: destinationIndex)
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

    @inline(__always)

    mutating func appendDescriptor(_ byte: UInt8) {
        descriptorStorage[descriptorCount] = byte
        descriptorCount += 1
    }

    /// Index of `destination` in the list, adding it if there is room; nil when full.
    @inline(__always)
    mutating func destinationIndex(_ destination: UInt16) -> Int? {
        if let i = existingIndex(destination) { return i }
        guard destinationCount < FCPWire.maxAllocDestinations else { return nil }
        return insertDestination(destination)
    }

    /// Appends `destination` (known absent; the caller checked there is room).
    @inline(__always)
    mutating func insertDestination(_ destination: UInt16) -> Int {
        let position = destinationCount
        destinationStorage[position] = destination
        countStorage[position] = 0
        destinationCount += 1
        return position
    }

    /// At most 15 entries: a linear scan beats hashing here (measured).
    @inline(__always)
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
/// the last 192 slots, each marked with its destination and path.
///
/// Allocations older than the window fall off unsent (an endpoint would reject them as
/// too late anyway); ``takeBlock(into:maxDescriptorBytes:maxPayloadBytes:)`` packs the
/// oldest pending ones into one reference ALLOC payload, ``takeWide(into:maxEntries:)``
/// into a WIDE-ALLOC. Unlike the reference encoder it never lists a destination twice,
/// never ends a payload on a dangling skip byte, and stays within the byte budget the
/// caller has left in the packet.
public struct PendingAllocations {
    /// Slots the window spans (reference `FASTPASS_WND_LEN`).
    public static let windowLength: UInt64 = 192
    /// The reference caps descriptors at 64 bytes per payload.
    public static let referenceMaxDescriptorBytes = 64

    /// Latest slot the window has advanced to.
    public private(set) var head: UInt64
    /// False until the first allocation after ``removeAll()``: the window then starts at
    /// that slot, whatever numbering it is in.
    private var anchored: Bool
    private var marked = RingBitmap256()
    // On the heap, allocated once: inline, they made every arbiter session a 2 KB value
    // that reads copied whole.
    private var nodes = [UInt32](repeating: 0, count: 256)
    private var paths = [UInt16](repeating: 0, count: 256)
    /// Allocations waiting to be sent.
    public private(set) var count = 0
    /// Allocations dropped because their node or path does not fit a reference ALLOC
    /// destination field (14 + 2 bits).
    public private(set) var unencodable: UInt64 = 0

    /// A window whose newest slot is `head`.
    public init(head: UInt64) {
        self.head = head
        anchored = true
    }

    /// A window that starts at the first allocation added.
    public init() {
        head = 0
        anchored = false
    }

    public var isEmpty: Bool { count == 0 }

    @inline(__always)
    private static func index(_ slot: UInt64) -> Int { Int(truncatingIfNeeded: slot & 255) }

    @inline(__always)
    private mutating func unmark(_ slot: UInt64) {
        if marked.remove(slot) { count -= 1 }
    }

    @inline(__always)
    private var edge: UInt64 { head &- (Self.windowLength - 1) }

    /// Oldest pending slot at or after `start`, searching up to the head.
    @inline(__always)
    private func firstMarked(atOrAfter start: UInt64) -> UInt64? {
        guard count > 0 else { return nil }
        return marked.first(from: Wrapping.before(start, edge) ? edge : start, through: head)
    }

    /// Newest pending slot at or before `slot` that is still inside the window.
    @inline(__always)
    private func lastMarked(atOrBefore slot: UInt64) -> UInt64? {
        guard count > 0, Wrapping.beforeOrEqual(slot, head) else { return nil }
        return marked.last(from: slot, downTo: edge)
    }

    /// The oldest pending slot.
    @inline(__always)
    public var earliest: UInt64? { firstMarked(atOrAfter: edge) }

    /// Why an allocation was not added.
    public enum AddResult: Sendable, Hashable {
        case added
        /// Older than the window.
        case tooOld
        /// That slot already has a pending allocation.
        case slotTaken
    }

    /// Adds an allocation of `slot` to `node` over `path`. Advancing the window to a later
    /// slot drops pending allocations that fall out of it; `fellOff` hears of each, newest
    /// first.
    public mutating func add(
        slot: UInt64, node: NodeID, path: PathID,
        fellOff: (_ slot: UInt64, _ node: NodeID, _ path: PathID) -> Void = { _, _, _ in }
    ) -> AddResult {
        while let old = popFallingOff(whenAdding: slot) { fellOff(old.slot, old.node, old.path) }
        if !anchored {
            anchored = true
            head = slot
        } else if Wrapping.after(slot, head) {
            head = slot
        } else if Wrapping.beforeOrEqual(slot, head &- Self.windowLength) {
            return .tooOld
        } else if marked.contains(slot) {
            return .slotTaken
        }
        let i = Self.index(slot)
        marked.insert(slot)
        nodes[i] = node.rawValue
        paths[i] = path.rawValue
        count += 1
        return .added
    }

    /// Removes and returns, newest first, one pending allocation that adding `slot` would
    /// push out of the window (everything at or before `slot - 192`).
    public mutating func popFallingOff(whenAdding slot: UInt64) -> (slot: UInt64, node: NodeID, path: PathID)? {
        guard anchored, count > 0, Wrapping.after(slot, head) else { return nil }
        let limit = slot &- Self.windowLength
        guard let old = lastMarked(atOrBefore: Wrapping.before(head, limit) ? head : limit) else { return nil }
        let i = Self.index(old)
        unmark(old)
        return (old, NodeID(nodes[i]), PathID(paths[i]))
    }

    /// Removes the pending allocation of `slot`, returning its destination; nil when that
    /// slot has none.
    public mutating func remove(slot: UInt64) -> NodeID? {
        guard count > 0, marked.contains(slot) else { return nil }
        unmark(slot)
        return NodeID(nodes[Self.index(slot)])
    }

    /// Removes and returns any one pending allocation's destination (to report allocations
    /// that will never be sent).
    public mutating func popAny() -> NodeID? {
        guard let slot = earliest else { return nil }
        unmark(slot)
        return NodeID(nodes[Self.index(slot)])
    }

    /// Adds an allocation given as a raw reference destination field (node in bits 13–0,
    /// path in bits 15–14).
    public mutating func add(
        slot: UInt64, destination raw: UInt16, fellOff: (_ slot: UInt64, _ destination: UInt16) -> Void = { _, _ in }
    ) -> AddResult {
        let (node, path) = ReferenceDestination.unpack(raw)
        return add(slot: slot, node: node, path: path) { s, n, p in
            fellOff(s, ReferenceDestination.pack(n, path: p) ?? 0)
        }
    }

    /// Drops every pending allocation (after a protocol reset, or a change of slot
    /// numbering, they are meaningless); the window restarts at the next one added.
    public mutating func removeAll() {
        marked.removeAll()
        count = 0
        anchored = false
    }

    /// Moves the oldest pending allocations into `block` as one reference ALLOC payload.
    ///
    /// - Parameters:
    ///   - maxDescriptorBytes: descriptor budget, at most 126; the reference used 64.
    ///   - maxPayloadBytes: room left in the packet for the whole payload (type word,
    ///     base, destination list and descriptors).
    /// - Returns: the number of allocations taken.
    @discardableResult
    public mutating func takeBlock(
        into block: inout AllocBlock, maxDescriptorBytes: Int = referenceMaxDescriptorBytes,
        maxPayloadBytes: Int = .max
    ) -> Int {
        block.clear()
        let descriptorBudget = min(FCPWire.maxAllocDescriptorBytes, max(0, maxDescriptorBytes))
        guard var slot = earliest else { return 0 }
        var previous = (slot &- 1) & ~15
        block.baseField = UInt16(truncatingIfNeeded: previous >> 4)
        var taken = 0
        while true {
            let i = Self.index(slot)
            guard let raw = ReferenceDestination.pack(NodeID(nodes[i]), path: PathID(paths[i])) else {
                unencodable &+= 1
                unmark(slot)
                guard let next = firstMarked(atOrAfter: slot &+ 1) else { break }
                slot = next
                continue
            }
            var gap = slot &- previous
            let needsSkip = gap > 16
            let existing = block.existingIndex(raw)
            let destinations = block.destinationCount + (existing == nil ? 1 : 0)
            let descriptors = block.descriptorCount + (needsSkip ? 2 : 1)
            let evenDescriptors = (descriptors + 1) & ~1
            guard destinations <= FCPWire.maxAllocDestinations,
                evenDescriptors <= descriptorBudget,
                4 + 2 * destinations + evenDescriptors <= maxPayloadBytes
            else { break }
            let index = existing ?? block.insertDestination(raw)
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

    /// Writes the oldest pending allocations as one WIDE-ALLOC payload (64-bit slots,
    /// 16-bit path, 32-bit destination), at most `maxEntries` of them and as many as fit.
    /// - Returns: the number of allocations written; 0 writes nothing.
    /// - Parameter taken: told the node and path of each allocation written.
    @discardableResult
    public mutating func takeWide(
        into writer: inout FCPPacketWriter, maxEntries: Int = .max,
        taken: (_ node: NodeID, _ path: PathID) -> Void = { _, _ in }
    ) -> Int {
        guard let first = earliest else { return 0 }
        let room =
            (writer.remaining - FCPWire.extensionHeaderLength - FCPListPayload.wideAllocHeaderLength)
            / FCPListPayload.wideAllocEntryLength
        let n = min(count, maxEntries, room, 0xFFFF / FCPListPayload.wideAllocEntryLength)
        guard n > 0 else { return 0 }
        let length = FCPListPayload.wideAllocHeaderLength + n * FCPListPayload.wideAllocEntryLength
        var slot = first
        do throws(FCPEncodeError) {
            try writer.writeExtension(.wideAlloc, bodyLength: length) { body in
                writeBE64(body, 0, first)
                var offset = FCPListPayload.wideAllocHeaderLength
                for _ in 0..<n {
                    let i = Self.index(slot)
                    writeBE16(body, offset, UInt16(truncatingIfNeeded: slot &- first))
                    writeBE16(body, offset + 2, paths[i])
                    writeBE32(body, offset + 4, nodes[i])
                    taken(NodeID(nodes[i]), PathID(paths[i]))
                    unmark(slot)
                    offset += FCPListPayload.wideAllocEntryLength
                    if let next = firstMarked(atOrAfter: slot &+ 1) { slot = next }
                }
            }
        } catch {
            return 0
        }
        return n
    }
}
