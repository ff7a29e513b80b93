import FastpassAgent
import FastpassProtocol
import Foundation
import PacketIO

/// Everything `fastpass-agent` needs to run, as read from its configuration file and
/// flags, validated.
public struct AgentDaemonConfiguration: DaemonConfiguration {
    public static let program = "fastpass-agent"
    public static let defaultPath = "/etc/fastpass/agent.yaml"

    /// The arbiter's FCP address.
    public var arbiter: UInt32
    /// This host's address on the fabric: the source of its FCP and of the packets it
    /// schedules.
    public var address: UInt32
    /// This host's id in the arbiter's topology.
    public var node: UInt32
    /// The interface towards the fabric, where scheduled packets leave.
    public var interface: String
    /// Every other host of the fabric: traffic to them waits for timeslots.
    public var peers: [AgentPeer]
    /// Name of the TUN device the peers' routes point at.
    public var tun = "fp0"
    /// Routing table holding the routes through the TUN device.
    public var routingTable = 222
    /// Mark of the agent's own scheduled packets: the rule sending everything else to
    /// ``routingTable`` skips packets carrying it, so they leave by the main table.
    public var mark: UInt32 = 0xFA57
    /// Priority of that rule.
    public var rulePriority = 1000
    /// IPv4 bytes one timeslot carries (the fabric's MTU); also the TUN device's MTU.
    public var slotBytes = 1500
    /// Packets the agent holds at once, and towards one destination.
    public var packetCapacity = 4096
    public var perDestinationPacketLimit = 1024
    /// Release a slot's packets this long before the slot starts (covers the time from
    /// release to the wire).
    public var releaseLeadNanoseconds: UInt64 = 0
    /// A slot's packets are not sent later than this after the slot starts: they ask for a
    /// new slot instead. 0: one timeslot.
    public var lateReleaseLimitNanoseconds: UInt64 = 0
    /// Least time between two FCP packets to the arbiter.
    public var requestIntervalNanoseconds: UInt64 = 20_000
    /// Slots an allocation may arrive late and still be used.
    public var acceptLateSlots: UInt64 = 16
    /// What to do when the arbiter does not answer.
    public var unreachablePolicy = UnreachablePolicy.fallback
    /// How long packets may wait without a word from the arbiter before it counts as
    /// unreachable.
    public var unreachableAfterNanoseconds: UInt64 = 300_000_000
    /// `sleep`: the pacing thread sleeps until the next slot (shared CPUs, slots of tens of
    /// microseconds and more); `busy`: it spins (a CPU of its own, microsecond slots).
    public var pacing = Pacing.sleep
    /// CPU for the pacing thread; nil: not pinned.
    public var pacingCore: Int?
    /// SCHED_FIFO priority of the pacing thread (1...99), so that it wakes on time for
    /// its slots on a busy host; 0: the normal policy.
    public var pacingPriority = 0
    /// IP protocols and DSCP values that never wait.
    public var bypassProtocols: Set<UInt8> = []
    public var bypassDSCP: Set<UInt8> = []
    /// Address and port of the HTTP endpoint (`/metrics`, `/status`); nil: none.
    public var metrics: (host: String, port: Int)?
    public var logLevel = "info"
    /// The packet I/O backend: raw sockets (the default) or a DPDK port.
    public var io: IOBackend = .sockets
    /// The `dpdk:` section (EAL arguments, port), when given.
    public var dpdk: DPDKSettings?

    /// How the pacing thread waits for the next slot.
    public enum Pacing: String, Sendable {
        case sleep
        case busy
    }

    /// What the agent does with scheduled traffic while the arbiter cannot be reached:
    /// send it unscheduled until the arbiter answers again, or keep holding it (queues fill
    /// and drop, TCP backs off). The agent core decides; see ``AgentUnreachablePolicy``.
    public typealias UnreachablePolicy = AgentUnreachablePolicy

    /// Reads a configuration from YAML `text` (named `file` in messages), then applies
    /// `overrides` (dotted field path → value), and validates it all.
    public static func parse(yaml text: String, file: String, overrides: [(String, String)] = [])
        throws(ConfigurationError) -> AgentDaemonConfiguration
    {
        var root = try ConfigurationReader.root(yaml: text, file: file, overrides: overrides)
        func address(_ key: String, _ what: String) throws(ConfigurationError) -> UInt32 {
            guard let text = try root.string(key) else {
                throw ConfigurationError(field: key, reason: "missing: \(what)")
            }
            guard let a = IPv4.parse(text) else {
                throw ConfigurationError(field: key, reason: "'\(text)' is not an IPv4 address")
            }
            return a
        }
        let arbiter = try address("arbiter", "the arbiter's IPv4 address")
        let own = try address("address", "this host's IPv4 address on the fabric")
        guard let node = try root.integer("node", in: 0...Int(UInt32.max)) else {
            throw ConfigurationError(field: "node", reason: "missing: this host's id in the arbiter's topology")
        }
        guard let interface = try root.string("interface"), !interface.isEmpty else {
            throw ConfigurationError(
                field: "interface", reason: "missing: the interface towards the fabric (e.g. eth0)")
        }
        try checkInterfaceName(interface, field: "interface")
        guard let items = try root.sequence("peers"), !items.isEmpty else {
            throw ConfigurationError(field: "peers", reason: "missing: the other hosts of the fabric ({id, address})")
        }
        var peers: [AgentPeer] = []
        for (i, item) in items.enumerated() {
            var p = try ConfigurationReader(item, path: "peers[\(i)]")
            guard let id = try p.integer("id", in: 0...Int(UInt32.max)) else {
                throw ConfigurationError(field: "peers[\(i)].id", reason: "missing")
            }
            guard let text = try p.string("address") else {
                throw ConfigurationError(field: "peers[\(i)].address", reason: "missing")
            }
            guard let a = IPv4.parse(text) else {
                throw ConfigurationError(field: "peers[\(i)].address", reason: "'\(text)' is not an IPv4 address")
            }
            try p.finish()
            if a == arbiter {
                throw ConfigurationError(
                    field: "peers[\(i)].address", reason: "\(text) is the arbiter's: FCP must not wait for slots")
            }
            if UInt32(id) == UInt32(node) {
                throw ConfigurationError(field: "peers[\(i)].id", reason: "\(id) is this host's own node")
            }
            peers.append(AgentPeer(address: a, node: NodeID(UInt32(id))))
        }
        if arbiter == own {
            throw ConfigurationError(field: "arbiter", reason: "the arbiter's address is this host's own")
        }
        var c = AgentDaemonConfiguration(
            arbiter: arbiter, address: own, node: UInt32(node), interface: interface, peers: peers)
        if let t = try root.string("tun") {
            try checkInterfaceName(t, field: "tun")
            c.tun = t
        }
        if var r = try root.mapping("routing") {
            c.routingTable = try r.integer("table", in: 1...0x7FFF_FFFF) ?? c.routingTable
            if [253, 254, 255].contains(c.routingTable) {
                throw ConfigurationError(
                    field: "routing.table", reason: "\(c.routingTable) is a system table (default, main, local)")
            }
            if let m = try r.string("mark") {
                guard let v = parseUInt32(m), v != 0 else {
                    throw ConfigurationError(field: "routing.mark", reason: "'\(m)' is not a non-zero 32-bit mark")
                }
                c.mark = v
            }
            c.rulePriority = try r.integer("rule_priority", in: 1...32_765) ?? c.rulePriority
            try r.finish()
        }
        c.slotBytes = try root.integer("slot_bytes", in: 576...9000) ?? c.slotBytes
        c.packetCapacity = try root.integer("packet_capacity", in: 16...1 << 20) ?? c.packetCapacity
        c.perDestinationPacketLimit =
            try root.integer("per_destination_packet_limit", in: 1...1 << 20)
            ?? min(c.perDestinationPacketLimit, c.packetCapacity)
        c.releaseLeadNanoseconds = UInt64(try root.integer("release_lead_ns", in: 0...10_000_000) ?? 0)
        c.lateReleaseLimitNanoseconds = UInt64(try root.integer("late_release_limit_ns", in: 0...100_000_000) ?? 0)
        c.requestIntervalNanoseconds = UInt64(
            try root.integer("request_interval_ns", in: 0...100_000_000) ?? Int(c.requestIntervalNanoseconds))
        c.acceptLateSlots = UInt64(try root.integer("accept_late_slots", in: 0...63) ?? Int(c.acceptLateSlots))
        if var u = try root.mapping("unreachable") {
            c.unreachablePolicy = try u.choice("policy", ["fallback": .fallback, "hold": .hold]) ?? c.unreachablePolicy
            if let ms = try u.integer("after_ms", in: 1...3_600_000) {
                c.unreachableAfterNanoseconds = UInt64(ms) * 1_000_000
            }
            try u.finish()
        }
        if var p = try root.mapping("pacing") {
            c.pacing = try p.choice("mode", ["sleep": .sleep, "busy": .busy]) ?? c.pacing
            c.pacingCore = try p.integer("core", in: 0...1023)
            c.pacingPriority = try p.integer("priority", in: 0...99) ?? 0
            try p.finish()
        }
        if let list = try root.integers("bypass_protocols", in: 0...255) {
            c.bypassProtocols = Set(list.map(UInt8.init))
        }
        if let list = try root.integers("bypass_dscp", in: 0...63) { c.bypassDSCP = Set(list.map(UInt8.init)) }
        c.metrics = try root.metricsAddress()
        c.logLevel = try root.logLevel() ?? c.logLevel
        (c.io, c.dpdk) = try root.ioSettings()
        try root.finish()
        if c.io == .dpdk && c.slotBytes > 1500 {
            // The port keeps its default 1500-byte MTU; larger packets would be dropped.
            throw ConfigurationError(
                field: "slot_bytes",
                reason: "\(c.slotBytes) is more than io: dpdk sends (a 1500-byte MTU): use 1500 or less")
        }
        if c.perDestinationPacketLimit > c.packetCapacity {
            throw ConfigurationError(
                field: "per_destination_packet_limit",
                reason: "\(c.perDestinationPacketLimit) is more than packet_capacity (\(c.packetCapacity))")
        }
        if c.pacing == .busy && c.pacingPriority > 0 {
            throw ConfigurationError(
                field: "pacing.priority",
                reason:
                    "a busy-polling thread at real-time priority would starve everything else on its CPU; use mode: sleep, or priority 0"
            )
        }
        if let problem = c.agentConfiguration().problem {
            throw ConfigurationError(field: nil, reason: problem)
        }
        return c
    }

    /// The peers scheduled, as `--check-config` reports them.
    public var summary: String { "\(peers.count) peers" }

    /// The agent core's configuration. The slot length is the arbiter's, announced when
    /// the session is established; until then nothing is allocated, so the value given
    /// here only sizes the lateness counters.
    public func agentConfiguration(slotNanoseconds: UInt64 = 1_000_000) -> AgentConfiguration {
        var s = EndpointSessionConfiguration()
        s.mode = .extended(fallbackToReference: false)
        s.node = NodeID(node)
        s.address = address
        s.maxDestinations = max(16, peers.count)
        s.allocationWindow.missThreshold = acceptLateSlots
        var a = AgentConfiguration(session: s, address: address, peers: peers)
        a.slotBytes = slotBytes
        a.slotNanoseconds = slotNanoseconds
        a.packetCapacity = packetCapacity
        a.perDestinationPacketLimit = perDestinationPacketLimit
        a.releaseLeadNanoseconds = releaseLeadNanoseconds
        a.requestIntervalNanoseconds = requestIntervalNanoseconds
        a.lateReleaseLimitNanoseconds = lateReleaseLimitNanoseconds
        a.bypassProtocols = bypassProtocols
        a.bypassDSCP = bypassDSCP
        a.unreachableAfterNanoseconds = unreachableAfterNanoseconds
        a.unreachablePolicy = unreachablePolicy
        return a
    }

    static func checkInterfaceName(_ name: String, field: String) throws(ConfigurationError) {
        let ok =
            !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".."
            && name.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") }
        if !ok {
            throw ConfigurationError(
                field: field, reason: "'\(name)' is not an interface name (1 to 15 printable characters, no '/')")
        }
    }

    /// A decimal or 0x-prefixed hexadecimal 32-bit value.
    static func parseUInt32(_ text: String) -> UInt32? {
        let t = text.lowercased()
        return t.hasPrefix("0x") ? UInt32(t.dropFirst(2), radix: 16) : UInt32(t)
    }
}
