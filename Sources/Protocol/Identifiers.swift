/// A host of the fabric, as numbered by the topology configuration.
///
/// Reference FCP carries 16-bit destination fields of which 14 bits name the node; the
/// extended protocol carries 32 bits.
public struct NodeID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { rawValue = value }

    /// Largest node id a reference ALLOC destination field can name (14 bits).
    public static let referenceLimit: UInt32 = 0x3FFF

    public static func < (a: NodeID, b: NodeID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "node \(rawValue)" }
}

/// Which spine (path) an allocation travels over. Reference FCP has two bits for it in
/// the ALLOC destination field; the extended protocol sixteen.
public struct PathID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ value: UInt16) { rawValue = value }

    public static let none = PathID(0)
    public var description: String { "path \(rawValue)" }
}

/// The reference packs node and path into one 16-bit ALLOC destination field.
public enum ReferenceDestination {
    /// `node | path << 14`; nil when either does not fit.
    public static func pack(_ node: NodeID, path: PathID) -> UInt16? {
        guard node.rawValue <= NodeID.referenceLimit, path.rawValue < 4 else { return nil }
        return UInt16(node.rawValue) | path.rawValue << 14
    }

    /// Splits a raw field into node (bits 13–0) and path (bits 15–14). The reference
    /// endpoint forgot to do this and looked demand up by the raw value, so an allocation
    /// with path bits set never matched its flow; ours strips them.
    public static func unpack(_ raw: UInt16) -> (node: NodeID, path: PathID) {
        (NodeID(UInt32(raw & 0x3FFF)), PathID(raw >> 14))
    }
}
