import FastpassArbiter
import FastpassProtocol
import Foundation
import PacketIO

/// Everything `fastpass-arbiter` needs to run, as read from its configuration file and
/// flags, validated.
public struct ArbiterDaemonConfiguration: DaemonConfiguration {
    public static let program = "fastpass-arbiter"
    public static let defaultPath = "/etc/fastpass/arbiter.yaml"

    /// Local IPv4 address FCP is served on (raw IPv4, protocol 222).
    public var listen: UInt32
    /// Address and port of the HTTP endpoint (`/metrics`, `/status`, `/endpoints`,
    /// `/topology`); nil: none.
    public var metrics: (host: String, port: Int)?
    /// File holding the 16-byte key (32 hexadecimal digits) that authenticates FCP packets
    /// of extended endpoints; nil: no authentication.
    public var authenticationKeyFile: String?
    /// Refuse extended endpoints that do not authenticate (needs a key).
    public var requireAuthentication = false
    /// Slots allocated together.
    public var batchSize = 16
    /// How far ahead of the current slot batches are allocated; nil (`auto`, the default):
    /// follow the measured round trip to the endpoints (see ``ArbiterCore/sendLeadSlots``).
    public var lookaheadSlots: Int?
    /// How far ahead of its earliest slot a packet of allocations leaves; nil (`auto`, the
    /// default): the endpoints' measured round trip plus a batch.
    public var sendLeadSlots: Int?
    public var policy: AllocationPolicy = .maxMinFair
    public var pathSelection: PathSelector.Method = .edgeColoring
    /// CPU for the communication thread (sockets, sessions, and the allocator and path
    /// selection when they run inline); nil: not pinned.
    public var communicationCore: Int?
    /// SCHED_FIFO priority of the communication thread (1...99), so that it handles each
    /// batch on time on a host where other work shares its CPU; 0: the normal policy.
    public var realtimePriority = 0
    /// Allocation stages on threads of their own (2 or more), with path selection on one
    /// more; 0 runs both inline on the communication thread.
    public var allocatorThreads = 0
    /// CPUs for the allocation stages, one each (nil: not pinned).
    public var allocatorCores: [Int]?
    /// CPU for the path-selection thread (nil: not pinned).
    public var pathCore: Int?
    /// Datagrams received or sent per system call.
    public var ioBatch = 32
    /// FCP packets per second the arbiter takes from all endpoints together (the
    /// `control_budget:` section's `packets_per_second`; 0: no budget). Each endpoint that
    /// negotiates the control budget is told its share and paces itself by it.
    public var controlPacketsPerSecond = ArbiterCoreConfiguration().controlPacketsPerSecond
    /// Packets an endpoint may send back to back (`control_budget.burst`).
    public var controlBurst = ArbiterCoreConfiguration().controlBurst
    /// The least share of one endpoint, packets per second (`control_budget.minimum_share`).
    public var minimumControlShare = ArbiterCoreConfiguration().minimumControlShare
    /// Whether the capacity follows what the communication thread measures it takes
    /// (`control_budget.measure`), and at what share of that (`control_budget.target_load`).
    public var measuresControlCapacity = ArbiterCoreConfiguration().measuresControlCapacity
    public var controlTargetLoad = ArbiterCoreConfiguration().controlTargetLoad
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical`.
    public var logLevel = "info"
    /// The packet I/O backend: raw sockets (the default) or a DPDK port.
    public var io: IOBackend = .sockets
    /// The `dpdk:` section (EAL arguments, port), when given.
    public var dpdk: DPDKSettings?
    public var topology: TopologyConfiguration

    /// Reads a configuration from YAML `text` (named `file` in messages), then applies
    /// `overrides` (dotted field path → value, as flags give them), and validates it all,
    /// the arbiter core's own checks included.
    public static func parse(yaml text: String, file: String, overrides: [(String, String)] = [])
        throws(ConfigurationError) -> ArbiterDaemonConfiguration
    {
        var root = try ConfigurationReader.root(yaml: text, file: file, overrides: overrides)
        guard let listenText = try root.string("listen") else {
            throw ConfigurationError(field: "listen", reason: "missing: the IPv4 address to serve FCP on")
        }
        guard let listen = IPv4.parse(listenText) else {
            throw ConfigurationError(field: "listen", reason: "'\(listenText)' is not an IPv4 address")
        }
        guard var topologyReader = try root.mapping("topology") else {
            throw ConfigurationError(field: "topology", reason: "missing: racks, spines, link rates and hosts")
        }
        var c = ArbiterDaemonConfiguration(listen: listen, topology: try readTopology(&topologyReader))
        c.metrics = try root.metricsAddress()
        c.authenticationKeyFile = try root.string("authentication_key_file").flatMap { $0.isEmpty ? nil : $0 }
        c.requireAuthentication = try root.boolean("require_authentication") ?? false
        c.batchSize = try root.integer("batch_size", in: 1...64) ?? c.batchSize
        if try root.string("lookahead_slots") != "auto" {
            c.lookaheadSlots = try root.integer("lookahead_slots", in: 0...63) ?? c.lookaheadSlots
        }
        if try root.string("send_lead_slots") != "auto" {
            c.sendLeadSlots = try root.integer("send_lead_slots", in: 0...63) ?? c.sendLeadSlots
        }
        c.policy =
            try root.choice(
                "policy",
                [
                    "max-min-fair": .maxMinFair, "shortest-remaining-first": .shortestRemainingFirst,
                    "weighted-fair": .weightedFair, "strict-priority": .strictPriority,
                ]) ?? c.policy
        c.pathSelection =
            try root.choice("path_selection", ["edge-coloring": .edgeColoring, "euler-split": .eulerSplit])
            ?? c.pathSelection
        c.allocatorThreads = try root.integer("allocator_threads", in: 0...64) ?? 0
        c.realtimePriority = try root.integer("realtime_priority", in: 0...99) ?? 0
        if c.allocatorThreads == 1 {
            throw ConfigurationError(
                field: "allocator_threads", reason: "0 (inline) or at least 2 allocation stages; 1 is not a pipeline")
        }
        if var cores = try root.mapping("cores") {
            c.communicationCore = try cores.integer("communication", in: 0...4095)
            c.allocatorCores = try cores.integers("allocator", in: 0...1023)
            c.pathCore = try cores.integer("path", in: 0...1023)
            try cores.finish()
        }
        if let list = c.allocatorCores {
            guard c.allocatorThreads > 0 else {
                throw ConfigurationError(
                    field: "cores.allocator", reason: "set allocator_threads too: without it the allocator runs inline")
            }
            guard list.count == c.allocatorThreads else {
                throw ConfigurationError(
                    field: "cores.allocator",
                    reason: "\(list.count) CPUs for \(c.allocatorThreads) allocator threads: name one per thread")
            }
        }
        if c.pathCore != nil && c.allocatorThreads == 0 {
            throw ConfigurationError(
                field: "cores.path", reason: "set allocator_threads too: without it path selection runs inline")
        }
        let pinned = [c.communicationCore].compactMap { $0 } + (c.allocatorCores ?? []) + [c.pathCore].compactMap { $0 }
        if Set(pinned).count < pinned.count {
            throw ConfigurationError(
                field: "cores", reason: "each thread needs a CPU of its own; \(pinned) names one twice (they spin)")
        }
        c.ioBatch = try root.integer("io_batch", in: 1...PacketBatch.maximumCapacity) ?? c.ioBatch
        if var budget = try root.mapping("control_budget") {
            c.controlPacketsPerSecond = UInt64(
                try budget.integer("packets_per_second", in: 0...Int(UInt32.max)) ?? Int(c.controlPacketsPerSecond))
            c.controlBurst = try budget.integer("burst", in: 1...1000) ?? c.controlBurst
            c.minimumControlShare = UInt64(
                try budget.integer("minimum_share", in: 1...Int(UInt32.max)) ?? Int(c.minimumControlShare))
            c.measuresControlCapacity = try budget.boolean("measure") ?? c.measuresControlCapacity
            c.controlTargetLoad = try budget.number("target_load", in: 0.05...1) ?? c.controlTargetLoad
            try budget.finish()
        }
        c.logLevel = try root.logLevel() ?? c.logLevel
        (c.io, c.dpdk) = try root.ioSettings()
        try root.finish()
        if c.io == .dpdk && c.ioBatch < 32 {
            // Vector receive paths of common NICs round a burst down to a multiple of 4 or
            // 8, and receive nothing below it.
            throw ConfigurationError(
                field: "io_batch", reason: "\(c.ioBatch) is too small for io: dpdk: use 32 or more")
        }
        if c.requireAuthentication && c.authenticationKeyFile == nil {
            throw ConfigurationError(
                field: "require_authentication", reason: "true needs authentication_key_file to name a key")
        }
        let topology: Topology
        do {
            topology = try Topology(c.topology)
        } catch {
            throw ConfigurationError(field: "topology.\(error.field)", reason: error.reason)
        }
        if topology.index(ofAddress: listen) != nil {
            throw ConfigurationError(
                field: "listen",
                reason: "\(listenText) is also a host of the topology; the arbiter needs its own address")
        }
        if let problem = c.coreConfiguration(authenticator: nil).problem(topology: topology) {
            // The core names its own fields; say them as the file does.
            var text = problem
            for (core, file) in [
                ("lookaheadSlots", "lookahead_slots"), ("sendLeadSlots", "send_lead_slots"),
                ("batchSize", "batch_size"),
            ] {
                text = text.replacingOccurrences(of: core, with: file)
            }
            throw ConfigurationError(field: nil, reason: text)
        }
        return c
    }

    /// What a valid configuration implies that an operator must act on outside the
    /// arbiter, one line each (`--check-config` prints them after `valid`, the daemon logs
    /// them at start): for reference endpoints, the spine their traffic is booked on.
    public var notes: [String] {
        guard let topology = try? Topology(topology), let note = topology.referencePathNote else { return [] }
        return [note]
    }

    /// The fabric's size, as `--check-config` reports it.
    public var summary: String {
        "\(topology.hosts.count) hosts, \(topology.racks) racks, \(topology.spines) spines"
    }

    private static func readTopology(_ r: inout ConfigurationReader) throws(ConfigurationError) -> TopologyConfiguration
    {
        func required<T>(_ v: T?, _ key: String) throws(ConfigurationError) -> T {
            guard let v else { throw ConfigurationError(field: r.field(key), reason: "missing") }
            return v
        }
        let racks = try required(try r.integer("racks", in: 1...4096), "racks")
        let spines = try required(try r.integer("spines", in: 1...4096), "spines")
        let hostGbps = try required(try r.number("host_gbps", in: 0.001...10_000), "host_gbps")
        let uplink = try r.number("uplink_gbps_per_spine", in: 0.001...100_000)
        let slotBytes = try r.integer("slot_bytes", in: 64...65_535) ?? 1538
        let slotNanoseconds = try r.number("timeslot_ns", in: 1...1_000_000_000)
        let reference = try r.boolean("reference_endpoints") ?? false
        guard let items = try r.sequence("hosts"), !items.isEmpty else {
            throw ConfigurationError(field: r.field("hosts"), reason: "missing: at least one host")
        }
        var hosts: [HostConfiguration] = []
        for (i, item) in items.enumerated() {
            var h = try ConfigurationReader(item, path: "\(r.field("hosts"))[\(i)]")
            let id = try required(try h.integer("id", in: 0...Int(UInt32.max)), "hosts[\(i)].id")
            let address = try required(try h.string("address"), "hosts[\(i)].address")
            let mac = try h.string("mac") ?? Self.macFor(address: address)
            let rack = try required(try h.integer("rack", in: 0...(racks - 1)), "hosts[\(i)].rack")
            try h.finish()
            hosts.append(HostConfiguration(id: UInt32(id), address: address, mac: mac, rack: rack))
        }
        try r.finish()
        // Non-oversubscribed by default: the rack's host capacity spread over the spines.
        let perRack = Dictionary(grouping: hosts, by: \.rack).values.map(\.count).max() ?? 1
        return TopologyConfiguration(
            hosts: hosts, racks: racks, spines: spines, hostLinkGbps: hostGbps,
            uplinkGbpsPerSpine: uplink ?? Double(perRack) * hostGbps / Double(spines), slotBytes: slotBytes,
            timeslotNanoseconds: slotNanoseconds, referenceEndpoints: reference)
    }

    /// A locally administered MAC derived from the address, for hosts whose MAC only
    /// matters to reference endpoints' hashing.
    static func macFor(address: String) -> String {
        let a = IPv4.parse(address) ?? 0
        let bytes = [0x02, 0x00, UInt8(a >> 24), UInt8((a >> 16) & 0xFF), UInt8((a >> 8) & 0xFF), UInt8(a & 0xFF)]
        return bytes.map { b in b < 16 ? "0" + String(b, radix: 16) : String(b, radix: 16) }.joined(separator: ":")
    }

    /// The arbiter core's configuration.
    public func coreConfiguration(authenticator: FCPAuthenticator?) -> ArbiterCoreConfiguration {
        var core = ArbiterCoreConfiguration()
        core.allocator.batchSize = batchSize
        core.allocator.policy = policy
        core.pathMethod = pathSelection
        core.lookaheadSlots = lookaheadSlots
        core.sendLeadSlots = sendLeadSlots
        if allocatorThreads >= 2 {
            var pipeline = PipelineConfiguration()
            pipeline.stages = allocatorThreads
            if allocatorCores != nil || pathCore != nil {
                // The pipeline takes the stages' CPUs then the path thread's; -1 leaves one
                // unpinned.
                pipeline.cpus = (allocatorCores ?? Array(repeating: -1, count: allocatorThreads)) + [pathCore ?? -1]
            }
            core.pipeline = pipeline
        }
        core.session.authenticator = authenticator
        core.session.requireAuthentication = requireAuthentication
        core.controlPacketsPerSecond = controlPacketsPerSecond
        core.controlBurst = controlBurst
        core.minimumControlShare = minimumControlShare
        core.measuresControlCapacity = measuresControlCapacity
        core.controlTargetLoad = controlTargetLoad
        return core
    }

    /// Reads the authentication key, if one is configured.
    public func loadAuthenticator() throws(ConfigurationError) -> FCPAuthenticator? {
        guard let path = authenticationKeyFile else { return nil }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(
                field: "authentication_key_file", reason: "\(path): cannot read: \(fileErrorReason(error, path: path))")
        }
        let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let a = FCPAuthenticator(hexKey: hex) else {
            throw ConfigurationError(
                field: "authentication_key_file", reason: "\(path): expected 32 hexadecimal digits (a 16-byte key)")
        }
        return a
    }
}
