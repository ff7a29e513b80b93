import FastpassAgent
import FastpassProtocol
import FastpassStatus
import Foundation
import Logging
import PacketIO
import ServiceLifecycle

/// `fastpass-agent` as a service: starts the pacing thread and the HTTP endpoint, tells
/// systemd it is ready, feeds its watchdog while the pacing thread goes round, and on
/// graceful shutdown (SIGTERM, SIGINT) stops both and removes its routes and rule.
public typealias AgentDaemon = DaemonService<AgentRuntime>

extension AgentRuntime: DaemonRuntime {
    public func serveUntilShutdown(logger: Logger, onReady: @escaping @Sendable (Int?) -> Void) async throws {
        try start()
        let exporter = MetricsExporter()
        let c = configuration
        // Runs until a graceful shutdown, or until the pacing thread gives up by itself.
        let failure: String?
        do {
            failure = try await ServiceScaffold.serve(
                thread: self, threadName: "pacing", http: c.metrics.map { ($0.host, $0.port) },
                readyStatus:
                    "scheduling traffic to \(c.peers.count) peers through \(c.tun), arbiter \(IPv4.format(c.arbiter))",
                logger: logger, onReady: onReady
            ) { [self] path in
                respond(path: path, exporter: exporter)
            }
        } catch {
            throw AgentStartError(reason: error.reason)
        }
        let s = snapshot()
        let left = HostNetwork.leftovers(c).filter { !$0.hasPrefix("device") }
        if !left.isEmpty { logger.error("could not remove: \(left.joined(separator: ", "))") }
        logger.info(
            "stopped; routes and rule removed",
            metadata: [
                "packets_released": "\(s.core.packetsReleased)", "packets_unscheduled": "\(s.core.packetsUnscheduled)",
                "packets_bypassed": "\(s.io.bypassSent)",
            ])
        if let failure { throw AgentStartError(reason: failure) }
    }

    func respond(path: String, exporter: MetricsExporter) -> HTTPEndpoint.Response {
        let s = snapshot()
        switch path {
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4", exporter.render(agent: s, configuration: configuration))
        case "/status":
            return (.ok, "application/json", StatusReport.json(AgentReport.status(s, configuration)))
        case "/":
            return (.ok, "text/plain", "fastpass-agent: /metrics /status\n")
        default:
            return (.notFound, "text/plain", "not found: \(path) (try /metrics, /status)\n")
        }
    }
}

/// The agent's state as JSON and Prometheus text.
enum AgentReport {
    static func status(_ s: AgentSnapshot, _ c: AgentDaemonConfiguration) -> AgentStatus {
        AgentStatus(
            state: s.state.rawValue, address: IPv4.format(c.address), node: Int(c.node),
            arbiter: IPv4.format(c.arbiter),
            interface: c.interface, tun: s.tun, peers: c.peers.count,
            uptimeSeconds: s.time > s.startedAt ? Double(s.time - s.startedAt) / 1e9 : 0,
            arbiterHeardAgoMilliseconds: s.lastHeard == 0 ? -1 : Double(s.time &- s.lastHeard) / 1e6,
            timeslotNanoseconds: Double(s.slotPicoseconds) / 1000, packetsWaiting: s.queuedPackets,
            unreachablePolicy: c.unreachablePolicy.rawValue, pacing: c.pacing.rawValue, pacingPinned: s.pinned,
            fallbacks: Int(s.io.unreachableEvents), ioBackend: c.io.rawValue, core: AgentCounters(s.core),
            io: AgentIOCounters(s.io), session: EndpointSessionCounters(s.session),
            transport: PacketIOCounters(s.transport),
            releaseLateness: AgentStatus.ReleaseLateness(
                p50: latenessQuantile(s.core.lateness, 0.5), p99: latenessQuantile(s.core.lateness, 0.99)),
            bypassed: Dictionary(
                uniqueKeysWithValues: BypassReason.allCases.map { ("\($0)", s.core.bypassed[$0.rawValue]) }))
    }

    /// Upper bound (ns) of the lateness bucket holding quantile `q`.
    static func latenessQuantile(_ h: InlineArray<16, UInt64>, _ q: Double) -> UInt64 {
        var total: UInt64 = 0
        for i in 0..<16 { total &+= h[i] }
        guard total > 0 else { return 0 }
        let target = UInt64((Double(total) * q).rounded(.up))
        var sum: UInt64 = 0
        for i in 0..<16 {
            sum &+= h[i]
            if sum >= target { return bucketUpper(i) }
        }
        return bucketUpper(15)
    }

    /// Upper bound of lateness bucket `i` (``AgentCore/latenessBucket(_:)``), ns.
    static func bucketUpper(_ i: Int) -> UInt64 { UInt64(128) << UInt64(i) }
}

extension MetricsExporter {
    /// Brings the agent's metrics up to `s`, then renders them all.
    func render(agent s: AgentSnapshot, configuration c: AgentDaemonConfiguration) -> String {
        state.withLock { st in
            for (k, v) in StatusReport.counters(s.core) { advance("fastpass_agent_\(k)_total", [], to: v, in: &st) }
            for (k, v) in StatusReport.counters(s.io) { advance("fastpass_agent_\(k)_total", [], to: v, in: &st) }
            for (k, v) in StatusReport.counters(s.session) {
                advance("fastpass_agent_session_\(k)_total", [], to: v, in: &st)
            }
            for r in BypassReason.allCases {
                advance(
                    "fastpass_agent_bypassed_packets_total", [("reason", "\(r)")], to: s.core.bypassed[r.rawValue],
                    in: &st)
            }
            for r in MalformedReason.allCases {
                advance(
                    "fastpass_agent_malformed_packets_total", [("reason", "\(r)")], to: s.core.malformed[r.rawValue],
                    in: &st)
            }
            for state in [AgentState.connecting, .scheduled, .fallback, .holding] {
                gauge(
                    "fastpass_agent_state", s.state == state ? 1 : 0, dimensions: [("state", state.rawValue)], in: &st)
            }
            gauge("fastpass_agent_arbiter_reachable", s.state == .scheduled ? 1 : 0, in: &st)
            gauge("fastpass_agent_packets_queued", Double(s.queuedPackets), in: &st)
            gauge("fastpass_agent_timeslot_seconds", Double(s.slotPicoseconds) / 1e12, in: &st)
            gauge("fastpass_agent_peers", Double(c.peers.count), in: &st)
            gauge(
                "fastpass_agent_uptime_seconds", s.time > s.startedAt ? Double(s.time - s.startedAt) / 1e9 : 0, in: &st)
        }
        return registry.emitToString() + Self.releaseLateness(s.core.lateness)
    }

    /// The pacing thread's release lateness (how long after its planned time each packet
    /// left) as a Prometheus histogram, from the core's own power-of-two buckets.
    static func releaseLateness(_ h: InlineArray<16, UInt64>) -> String {
        let name = "fastpass_agent_release_lateness_seconds"
        var out = "# HELP \(name) How late the agent released each packet after its slot's planned time.\n"
        out += "# TYPE \(name) histogram\n"
        var cumulative: UInt64 = 0
        var sum = 0.0
        for i in 0..<15 {
            cumulative &+= h[i]
            let upper = Double(AgentReport.bucketUpper(i))
            sum += Double(h[i]) * upper * 0.75 / 1e9
            out += "\(name)_bucket{le=\"\(upper / 1e9)\"} \(cumulative)\n"
        }
        cumulative &+= h[15]
        sum += Double(h[15]) * Double(AgentReport.bucketUpper(15)) / 1e9
        out += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n\(name)_sum \(sum)\n\(name)_count \(cumulative)\n"
        return out
    }
}
