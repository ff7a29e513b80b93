/// A 48-bit Ethernet MAC address.
public struct MACAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address with its first octet most significant.
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    public init(_ o0: UInt8, _ o1: UInt8, _ o2: UInt8, _ o3: UInt8, _ o4: UInt8, _ o5: UInt8) {
        rawValue =
            UInt64(o0) << 40 | UInt64(o1) << 32 | UInt64(o2) << 24
            | UInt64(o3) << 16 | UInt64(o4) << 8 | UInt64(o5)
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-`); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var value: UInt64 = 0
        for part in parts {
            guard part.count == 2, let octet = UInt8(part, radix: 16) else { return nil }
            value = value << 8 | UInt64(octet)
        }
        rawValue = value
    }

    public var description: String {
        (0..<6).map { i -> String in
            let octet = UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * UInt64(i)))
            let hex = String(octet, radix: 16)
            return octet < 16 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    /// The organisationally unique identifier: the first three octets.
    public var oui: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 24) }
}

/// The reference's mapping from MAC addresses to 8-bit node ids.
///
/// The reference identifies hosts by a hash of their MAC address rather than by
/// configuration, so collisions are possible; our arbiter maps these ids to hosts through
/// the topology and refuses a topology where two hosts collide.
public enum ReferenceNodeID {
    /// The id the reference endpoint uses for destinations it must not schedule.
    public static let outOfBoundary: UInt16 = 255

    /// OUIs the reference endpoint never schedules: VRRP virtual routers and the Cisco
    /// gateway of the original testbed. Traffic to them is sent unscheduled.
    public static let unscheduledOUIs: [UInt32] = [0x00_005E, 0xA4_934C]

    /// `jhash_3words(low32(mac), high16(mac), 0, 0x33) & 0xFF`: the id the arbiter
    /// assigns to a source MAC.
    @inlinable
    public static func hash(_ mac: MACAddress) -> UInt16 {
        UInt16(
            JenkinsHash.hash3(
                UInt32(truncatingIfNeeded: mac.rawValue), UInt32(truncatingIfNeeded: mac.rawValue >> 32), 0,
                initval: 0x33) & 0xFF)
    }

    /// Whether the reference endpoint treats this MAC as a special (unscheduled) next hop.
    public static func isUnscheduled(_ mac: MACAddress) -> Bool {
        unscheduledOUIs.contains(mac.oui)
    }

    /// The destination id a reference endpoint classifies traffic to `mac` under.
    public static func endpointDestination(_ mac: MACAddress) -> UInt16 {
        isUnscheduled(mac) ? outOfBoundary : hash(mac)
    }
}
