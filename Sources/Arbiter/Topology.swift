import FastpassProtocol

/// One host as the configuration names it.
public struct HostConfiguration: Codable, Sendable, Hashable {
    /// The host's node id in FCP (any value but `UInt32.max`, unique).
    public var id: UInt32
    /// IPv4 address, dotted quad.
    public var address: String
    /// Ethernet MAC address, `aa:bb:cc:dd:ee:ff`.
    public var mac: String
    /// Index of the rack (ToR switch) the host hangs off, `0..<racks`.
    public var rack: Int

    public init(id: UInt32, address: String, mac: String, rack: Int) {
        self.id = id
        self.address = address
        self.mac = mac
        self.rack = rack
    }
}

/// A two-tier leaf–spine fabric as configured: racks of hosts under ToR switches, every
/// ToR connected to every spine.
public struct TopologyConfiguration: Codable, Sendable, Hashable {
    public var hosts: [HostConfiguration]
    public var racks: Int
    public var spines: Int
    /// Rate of every host link (and so of one timeslot's packet), Gbit/s.
    public var hostLinkGbps: Double
    /// Rate of each ToR↔spine link, Gbit/s. Non-oversubscribed: hosts per rack × host rate
    /// ÷ spines.
    public var uplinkGbpsPerSpine: Double
    /// Bytes a timeslot carries on the host link, framing included (1500-byte MTU +
    /// Ethernet header, FCS, preamble and gap = 1538).
    public var slotBytes: Int = 1538
    /// Timeslot length in nanoseconds; nil: the time `slotBytes` take at `hostLinkGbps`.
    public var timeslotNanoseconds: Double?
    /// Serve reference-FCP endpoints, which name destinations by an 8-bit hash of the MAC:
    /// then at most 256 hosts, and no two MACs may hash alike.
    public var referenceEndpoints: Bool = false

    public init(
        hosts: [HostConfiguration], racks: Int, spines: Int, hostLinkGbps: Double, uplinkGbpsPerSpine: Double,
        slotBytes: Int = 1538, timeslotNanoseconds: Double? = nil, referenceEndpoints: Bool = false
    ) {
        self.hosts = hosts
        self.racks = racks
        self.spines = spines
        self.hostLinkGbps = hostLinkGbps
        self.uplinkGbpsPerSpine = uplinkGbpsPerSpine
        self.slotBytes = slotBytes
        self.timeslotNanoseconds = timeslotNanoseconds
        self.referenceEndpoints = referenceEndpoints
    }

    /// A regular fabric for tests and benchmarks: `racks × hostsPerRack` hosts numbered
    /// from 0, addresses 10.rack.host.1, non-oversubscribed unless `oversubscription` > 1.
    public static func regular(
        racks: Int, hostsPerRack: Int, spines: Int, hostLinkGbps: Double = 10, oversubscription: Double = 1
    ) -> TopologyConfiguration {
        var hosts: [HostConfiguration] = []
        for r in 0..<racks {
            for h in 0..<hostsPerRack {
                let id = UInt32(r * hostsPerRack + h)
                let mac = String(format6: [0x02, 0x00, UInt8(r >> 8), UInt8(r & 0xFF), UInt8(h >> 8), UInt8(h & 0xFF)])
                hosts.append(HostConfiguration(id: id, address: "10.\(r >> 8).\(r & 0xFF).\(h + 1)", mac: mac, rack: r))
            }
        }
        let uplink = Double(hostsPerRack) * hostLinkGbps / Double(spines) / oversubscription
        return TopologyConfiguration(
            hosts: hosts, racks: racks, spines: spines, hostLinkGbps: hostLinkGbps, uplinkGbpsPerSpine: uplink)
    }
}

extension String {
    fileprivate init(format6 octets: [UInt8]) {
        self = octets.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: ":")
    }
}

/// A configuration the arbiter cannot use, naming the field and the reason.
public struct TopologyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var reason: String
    public var description: String { "topology.\(field): \(reason)" }
}

/// How many packets one ToR↔spine link carries in each timeslot: a rate of `numerator /
/// denominator` packets per slot, spread as evenly as integers allow (slot t carries
/// ⌊(t+1)·n/d⌋ − ⌊t·n/d⌋), so a 4/3 link alternates 1, 1, 2.
public struct LinkRate: Sendable, Hashable, CustomStringConvertible {
    public let numerator: UInt64
    public let denominator: UInt64

    public init(numerator: UInt64, denominator: UInt64) {
        precondition(denominator > 0)
        let g = Self.gcd(numerator, denominator)
        self.numerator = numerator / max(g, 1)
        self.denominator = denominator / max(g, 1)
    }

    static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 { b == 0 ? a : gcd(b, a % b) }

    /// The fraction closest to `x` with a denominator at most `maxDenominator` (continued
    /// fraction convergents and their semiconvergents).
    static func approximate(_ x: Double, maxDenominator: UInt64) -> (UInt64, UInt64) {
        guard x > 0 else { return (0, 1) }
        var (h0, h1): (UInt64, UInt64) = (0, 1)
        var (k0, k1): (UInt64, UInt64) = (1, 0)
        var value = x
        var best: (UInt64, UInt64) = (UInt64(x.rounded()), 1)
        for _ in 0..<64 {
            let a = UInt64(value.rounded(.down))
            let h2 = a * h1 + h0
            let k2 = a * k1 + k0
            if k2 > maxDenominator {
                // The best semiconvergent within the limit, if closer.
                let t = (maxDenominator - k0) / max(k1, 1)
                let hs = t * h1 + h0
                let ks = t * k1 + k0
                if ks > 0, abs(Double(hs) / Double(ks) - x) < abs(Double(best.0) / Double(best.1) - x) {
                    best = (hs, ks)
                }
                break
            }
            best = (h2, k2)
            (h0, h1) = (h1, h2)
            (k0, k1) = (k1, k2)
            let fraction = value - Double(a)
            if fraction < 1e-9 { break }
            value = 1 / fraction
        }
        return best
    }

    /// Packets the link carries in slot `t`.
    @inlinable
    public func capacity(inSlot t: UInt64) -> Int {
        let d = denominator
        let phase = t % d
        let before = (phase * numerator) / d
        let after = ((phase + 1) * numerator) / d
        return Int(after - before)
    }

    /// The largest per-slot capacity (the ceiling of the rate).
    public var peak: Int { Int((numerator + denominator - 1) / denominator) }

    public var packetsPerSlot: Double { Double(numerator) / Double(denominator) }
    public var description: String { "\(numerator)/\(denominator) packets per slot" }
}

/// The fabric the arbiter schedules: dense host indices `0..<hostCount`, their racks, the
/// spines, link rates and which links are up. Validated at construction; reconfigured only
/// by marking links and spines up or down.
public struct Topology: Sendable {
    public let configuration: TopologyConfiguration
    public let hostCount: Int
    public let rackCount: Int
    public let spineCount: Int
    /// Rack of each host (by dense index).
    public let rackOf: [UInt16]
    /// Host ids (by dense index).
    public let nodeIDs: [NodeID]
    public let addresses: [UInt32]
    public let macs: [MACAddress]
    /// Hosts of each rack.
    public let hostsOfRack: [[Int]]
    /// Per-slot capacity of each ToR↔spine link, in packets.
    public let linkRate: LinkRate
    /// Nanoseconds per timeslot.
    public let timeslotNanoseconds: Double
    private let indexByNode: [UInt32: Int]
    private let indexByAddress: [UInt32: Int]
    /// Host behind each reference 8-bit node id (the MAC hash), if any.
    private let indexByReferenceID: [Int?]
    /// `linkUp[rack * spineCount + spine]`: both directions of the link.
    public private(set) var linkUp: [Bool]
    public private(set) var spineUp: [Bool]

    public init(_ c: TopologyConfiguration) throws(TopologyError) {
        configuration = c
        guard c.racks >= 1 else { throw TopologyError(field: "racks", reason: "must be at least 1 (got \(c.racks))") }
        guard c.racks <= 4096 else {
            throw TopologyError(field: "racks", reason: "must be at most 4096 (got \(c.racks))")
        }
        guard c.spines >= 1 else {
            throw TopologyError(field: "spines", reason: "must be at least 1 (got \(c.spines))")
        }
        guard c.spines <= 1024 else {
            throw TopologyError(field: "spines", reason: "must be at most 1024 (got \(c.spines))")
        }
        guard c.hostLinkGbps.isFinite, c.hostLinkGbps > 0 else {
            throw TopologyError(field: "hostLinkGbps", reason: "must be a positive rate (got \(c.hostLinkGbps))")
        }
        guard c.uplinkGbpsPerSpine.isFinite, c.uplinkGbpsPerSpine > 0 else {
            throw TopologyError(
                field: "uplinkGbpsPerSpine", reason: "must be a positive rate (got \(c.uplinkGbpsPerSpine))")
        }
        guard c.slotBytes >= 64, c.slotBytes <= 16_384 else {
            throw TopologyError(field: "slotBytes", reason: "must be in 64...16384 (got \(c.slotBytes))")
        }
        guard !c.hosts.isEmpty else { throw TopologyError(field: "hosts", reason: "no hosts configured") }
        guard c.hosts.count <= 65_536 else {
            throw TopologyError(field: "hosts", reason: "at most 65536 hosts (got \(c.hosts.count))")
        }
        // Reference endpoints count slots of 2^19 / 419 ns; an arbiter serving them keeps to
        // that length (slightly longer, so no two of our slots fall in one of theirs).
        let slot =
            c.timeslotNanoseconds
            ?? (c.referenceEndpoints ? Topology.referenceTimeslotNanoseconds : Double(c.slotBytes) * 8 / c.hostLinkGbps)
        guard slot.isFinite, slot >= 10, slot <= 1_000_000 else {
            throw TopologyError(field: "timeslotNanoseconds", reason: "must be in 10...1000000 ns (got \(slot))")
        }
        timeslotNanoseconds = slot
        // Packets per slot per ToR↔spine link, as the closest fraction with a denominator up
        // to 1000 (13.33 Gbit/s over 10 Gbit/s hosts is 4/3, not 1333/1000).
        let ratio = c.uplinkGbpsPerSpine / c.hostLinkGbps
        guard ratio <= 4096 else {
            throw TopologyError(field: "uplinkGbpsPerSpine", reason: "more than 4096 host links' worth per spine")
        }
        let (numerator, denominator) = LinkRate.approximate(ratio, maxDenominator: 1000)
        guard numerator >= 1 else {
            throw TopologyError(
                field: "uplinkGbpsPerSpine", reason: "carries less than 1/1000 of a host link's packet per slot")
        }
        linkRate = LinkRate(numerator: numerator, denominator: denominator)

        hostCount = c.hosts.count
        rackCount = c.racks
        spineCount = c.spines
        var rackOf = [UInt16](repeating: 0, count: c.hosts.count)
        var nodeIDs = [NodeID](repeating: NodeID(0), count: c.hosts.count)
        var addresses = [UInt32](repeating: 0, count: c.hosts.count)
        var macs = [MACAddress](repeating: MACAddress(rawValue: 0), count: c.hosts.count)
        var hostsOfRack = [[Int]](repeating: [], count: c.racks)
        var indexByNode: [UInt32: Int] = [:]
        var indexByAddress: [UInt32: Int] = [:]
        var indexByMAC: [UInt64: Int] = [:]
        var referenceIDs = [Int?](repeating: nil, count: 256)
        for (i, h) in c.hosts.enumerated() {
            let field = "hosts[\(i)]"
            guard h.id != UInt32.max else {
                throw TopologyError(field: "\(field).id", reason: "4294967295 is reserved")
            }
            if let other = indexByNode[h.id] {
                throw TopologyError(field: "\(field).id", reason: "\(h.id) is also the id of hosts[\(other)]")
            }
            guard h.rack >= 0, h.rack < c.racks else {
                throw TopologyError(field: "\(field).rack", reason: "must be in 0..<\(c.racks) (got \(h.rack))")
            }
            guard let address = Self.parseIPv4(h.address) else {
                throw TopologyError(field: "\(field).address", reason: "'\(h.address)' is not an IPv4 address")
            }
            if let other = indexByAddress[address] {
                throw TopologyError(
                    field: "\(field).address", reason: "\(h.address) is also the address of hosts[\(other)]")
            }
            guard let mac = MACAddress(h.mac) else {
                throw TopologyError(
                    field: "\(field).mac", reason: "'\(h.mac)' is not a MAC address (aa:bb:cc:dd:ee:ff)")
            }
            if let other = indexByMAC[mac.rawValue] {
                throw TopologyError(field: "\(field).mac", reason: "\(h.mac) is also the MAC of hosts[\(other)]")
            }
            indexByNode[h.id] = i
            indexByAddress[address] = i
            indexByMAC[mac.rawValue] = i
            rackOf[i] = UInt16(h.rack)
            nodeIDs[i] = NodeID(h.id)
            addresses[i] = address
            macs[i] = mac
            hostsOfRack[h.rack].append(i)
        }
        // Reference endpoints name destinations by an 8-bit hash of the MAC; two hosts with
        // the same hash could not be told apart.
        if c.referenceEndpoints {
            guard slot >= Topology.referenceTimeslotNanoseconds else {
                throw TopologyError(
                    field: "timeslotNanoseconds",
                    reason:
                        "reference endpoints count slots of \(Topology.referenceTimeslotNanoseconds) ns; ours must not be shorter (got \(slot))"
                )
            }
            guard c.spines <= 4 else {
                throw TopologyError(
                    field: "spines",
                    reason: "reference endpoints carry a 2-bit path: at most 4 spines (got \(c.spines))")
            }
            guard c.hosts.count <= 256 else {
                throw TopologyError(
                    field: "referenceEndpoints",
                    reason: "reference endpoints name at most 256 hosts (8-bit ids); this topology has \(c.hosts.count)"
                )
            }
            for (i, mac) in macs.enumerated() {
                let id = Int(ReferenceNodeID.hash(mac))
                if let other = referenceIDs[id] {
                    throw TopologyError(
                        field: "hosts[\(i)].mac",
                        reason:
                            "its reference node id (MAC hash \(id)) collides with hosts[\(other)] (\(c.hosts[other].mac)); "
                            + "reference endpoints could not be told apart")
                }
                referenceIDs[id] = i
            }
        }
        for r in 0..<c.racks where hostsOfRack[r].isEmpty {
            throw TopologyError(field: "racks", reason: "rack \(r) has no hosts")
        }
        self.rackOf = rackOf
        self.nodeIDs = nodeIDs
        self.addresses = addresses
        self.macs = macs
        self.hostsOfRack = hostsOfRack
        self.indexByNode = indexByNode
        self.indexByAddress = indexByAddress
        self.indexByReferenceID = referenceIDs
        linkUp = [Bool](repeating: true, count: c.racks * c.spines)
        spineUp = [Bool](repeating: true, count: c.spines)
    }

    /// The reference's slot, 2^19 / 419 ns (1251.28401), rounded up to the picosecond:
    /// 1251.285 ns. Not shorter, so that no two of our slots fall into one of theirs.
    public static let referenceTimeslotNanoseconds = (Double(1 << 19) * 1000 / 419).rounded(.up) / 1000

    /// Reference node id (MAC hash) of each host, when the topology serves reference
    /// endpoints.
    public var referenceIDs: [UInt16] { macs.map { ReferenceNodeID.hash($0) } }

    /// Parses a dotted-quad IPv4 address into host byte order.
    public static func parseIPv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isNumber), let octet = UInt8(p) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    /// Dense index of the host with FCP node id `node`.
    public func index(of node: NodeID) -> Int? { indexByNode[node.rawValue] }
    /// Dense index of the host with this IPv4 address (host byte order).
    public func index(ofAddress address: UInt32) -> Int? { indexByAddress[address] }
    /// Dense index of the host a reference endpoint means by 8-bit id `id`.
    public func index(ofReferenceID id: UInt16) -> Int? { id < 256 ? indexByReferenceID[Int(id)] : nil }

    /// Whether the ToR↔spine link is usable (link and spine both up).
    @inlinable
    public func isUsable(rack: Int, spine: Int) -> Bool { linkUp[rack * spineCount + spine] && spineUp[spine] }

    /// Marks a ToR↔spine link down (both directions) or up again.
    public mutating func setLink(rack: Int, spine: Int, up: Bool) throws(TopologyError) {
        guard rack >= 0, rack < rackCount else { throw TopologyError(field: "rack", reason: "no rack \(rack)") }
        guard spine >= 0, spine < spineCount else { throw TopologyError(field: "spine", reason: "no spine \(spine)") }
        linkUp[rack * spineCount + spine] = up
    }

    public mutating func setSpine(_ spine: Int, up: Bool) throws(TopologyError) {
        guard spine >= 0, spine < spineCount else { throw TopologyError(field: "spine", reason: "no spine \(spine)") }
        spineUp[spine] = up
    }

    /// Packets rack `rack` can send to (and receive from) the spines in slot `t`.
    public func rackCapacity(rack: Int, slot t: UInt64) -> Int {
        var usable = 0
        for s in 0..<spineCount where isUsable(rack: rack, spine: s) { usable += 1 }
        return usable * linkRate.capacity(inSlot: t)
    }

    /// Whether every link is up (path selection can then use plain edge colouring).
    public var allLinksUp: Bool { !linkUp.contains(false) && !spineUp.contains(false) }

    /// The spine that the packets of a reference endpoint (a *pinned* source) take from
    /// rack `sourceRack` to rack `destinationRack`: the lowest spine whose links at both
    /// racks are usable, so spine 0 while every link is up; nil when there is none.
    ///
    /// A reference endpoint cannot be told a path (the original endpoint reads path bits
    /// as part of the destination), so its packets go where the switches send them. The
    /// arbiter books them on this spine, and the ToRs must route those hosts' traffic the
    /// same way: a static route or policy-based route towards spine 0, falling back to the
    /// next spine in order when a link is down (docs/operations.md).
    public func pinnedSpine(sourceRack: Int, destinationRack: Int) -> Int? {
        for s in 0..<spineCount where isUsable(rack: sourceRack, spine: s) && isUsable(rack: destinationRack, spine: s)
        {
            return s
        }
        return nil
    }

    /// What `--check-config` and the daemon's start-up log say about how this topology
    /// serves reference endpoints; nil when it does not serve them.
    public var referencePathNote: String? {
        guard configuration.referenceEndpoints else { return nil }
        guard spineCount > 1 else {
            return "topology.reference_endpoints: reference endpoints are served; one spine, so their paths need no "
                + "switch configuration"
        }
        return
            "topology.reference_endpoints: reference endpoints cannot be told a path, so their inter-rack packets are "
            + "booked on spine 0 (the lowest spine usable at both racks); the ToRs must route these hosts' source "
            + "addresses to the uplink towards spine 0 (static route or policy-based routing), not by ECMP over the "
            + "\(spineCount) spines (docs/operations.md, 'Reference endpoints and spines')"
    }
}
