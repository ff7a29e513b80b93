import CoreMetrics
import FastpassArbiter
import Prometheus
import Synchronization

/// Turns snapshots into swift-metrics counters and gauges backed by a Prometheus
/// registry, and renders the registry in Prometheus' text format.
///
/// Counters advance by the difference between snapshots; a counter that went backwards
/// (an endpoint's session restarted) advances by its new value.
final class MetricsExporter: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    struct State {
        var counters: [String: (CoreMetrics.Counter, UInt64)] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
    }
    let state = Mutex(State())

    init() { factory = PrometheusMetricsFactory(registry: registry) }

    func advance(_ name: String, _ dimensions: [(String, String)], to value: UInt64, in s: inout State) {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let (counter, last) =
            s.counters[key] ?? (CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory), 0)
        let delta = value >= last ? value - last : value
        if delta > 0 { counter.increment(by: Int64(clamping: delta)) }
        s.counters[key] = (counter, value)
    }

    func gauge(_ name: String, _ value: Double, dimensions: [(String, String)] = [], in s: inout State) {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let g = s.gauges[key] ?? CoreMetrics.Gauge(label: name, dimensions: dimensions, factory: factory)
        g.record(value)
        s.gauges[key] = g
    }

    /// Brings every metric up to `snapshot`, then renders them all.
    func render(_ snapshot: ArbiterSnapshot, topology: Topology) -> String {
        state.withLock { s in
            for (k, v) in StatusReport.counters(snapshot.core) {
                advance("fastpass_arbiter_\(k)_total", [], to: v, in: &s)
            }
            for (k, v) in StatusReport.counters(snapshot.allocator) {
                advance("fastpass_allocator_\(k)_total", [], to: v, in: &s)
            }
            for (k, v) in StatusReport.counters(snapshot.io) { advance("fastpass_io_\(k)_total", [], to: v, in: &s) }
            advance("fastpass_io_unknown_sources_total", [], to: snapshot.core.packetsFromUnknownHosts, in: &s)
            var fcp: [String: UInt64] = [:]
            var sessions: [String: UInt64] = [:]
            var connected = 0
            for e in snapshot.endpoints {
                for (k, v) in StatusReport.counters(e.connection) { fcp[k, default: 0] &+= v }
                for (k, v) in StatusReport.counters(e.session) { sessions[k, default: 0] &+= v }
                let d = [("endpoint", e.address)]
                advance("fastpass_endpoint_demand_slots_total", d, to: e.session.demandSlots, in: &s)
                advance("fastpass_endpoint_allocations_sent_total", d, to: e.session.allocationsSent, in: &s)
                advance("fastpass_endpoint_allocations_late_total", d, to: e.session.allocationsFellOff, in: &s)
                advance("fastpass_endpoint_allocations_rejected_total", d, to: e.session.allocationsRejected, in: &s)
                advance("fastpass_endpoint_packets_received_total", d, to: e.connection.rxPackets, in: &s)
                gauge("fastpass_endpoint_connected", e.connected ? 1 : 0, dimensions: d, in: &s)
                if e.connected { connected += 1 }
            }
            for (k, v) in fcp { advance("fastpass_fcp_\(k)_total", [], to: v, in: &s) }
            for (k, v) in sessions { advance("fastpass_session_\(k)_total", [], to: v, in: &s) }
            gauge("fastpass_communication_busy_seconds", Double(snapshot.busyNanoseconds) / 1e9, in: &s)
            gauge("fastpass_endpoints_connected", Double(connected), in: &s)
            gauge("fastpass_allocator_threads", Double(snapshot.allocatorThreads), in: &s)
            gauge("fastpass_allocator_threads_pinned", Double(snapshot.allocatorThreadsPinned), in: &s)
            gauge("fastpass_hosts", Double(topology.hostCount), in: &s)
            gauge("fastpass_current_slot", Double(snapshot.currentSlot), in: &s)
            gauge("fastpass_send_lead_slots", Double(snapshot.sendLeadSlots), in: &s)
            gauge("fastpass_lookahead_slots", Double(snapshot.lookaheadSlots), in: &s)
            gauge("fastpass_endpoint_round_trip_p99_seconds", Double(snapshot.roundTripP99Nanoseconds) / 1e9, in: &s)
            gauge("fastpass_control_budget_capacity_packets_per_second", Double(snapshot.controlCapacity), in: &s)
            gauge(
                "fastpass_control_budget_share_packets_per_second",
                Double(snapshot.controlShare?.packetsPerSecond ?? 0), in: &s)
            gauge(
                "fastpass_uptime_seconds",
                snapshot.time > snapshot.startedAt ? Double(snapshot.time - snapshot.startedAt) / 1e9 : 0, in: &s)
        }
        return registry.emitToString() + latenessHistogram(snapshot.lateness)
    }

    /// The communication thread's wake-up lateness as a Prometheus histogram, written
    /// here because the thread keeps its own power-of-two buckets (it must not take the
    /// registry's lock per sample).
    func latenessHistogram(_ buckets: [UInt64]) -> String {
        let name = "fastpass_slot_lateness_seconds"
        var out = "# HELP \(name) How late the communication thread handled a due batch or timer.\n"
        out += "# TYPE \(name) histogram\n"
        var cumulative: UInt64 = 0
        var sum = 0.0
        for (i, n) in buckets.enumerated() {
            cumulative &+= n
            let upper = i == 0 ? 0 : Double(UInt64(1) << UInt64(i))
            sum += Double(n) * upper * 0.75 / 1e9  // a bucket's mean, taking samples as spread within it
            out += "\(name)_bucket{le=\"\(upper / 1e9)\"} \(cumulative)\n"
        }
        out += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n\(name)_sum \(sum)\n\(name)_count \(cumulative)\n"
        return out
    }
}
