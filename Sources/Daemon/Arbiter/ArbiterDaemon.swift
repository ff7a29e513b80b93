import FastpassArbiter
import Foundation
import Logging
import PacketIO
import ServiceLifecycle

/// `fastpass-arbiter` as a service: starts the communication thread and the HTTP
/// endpoint, tells systemd it is ready, keeps its watchdog fed while the communication
/// thread is alive, and on graceful shutdown (SIGTERM, SIGINT) stops both.
public typealias ArbiterDaemon = DaemonService<ArbiterRuntime>

extension ArbiterRuntime: DaemonRuntime {
    public func serveUntilShutdown(logger: Logger, onReady: @escaping @Sendable (Int?) -> Void) async throws {
        try start()
        let exporter = MetricsExporter()
        let c = configuration
        _ = try await ServiceScaffold.serve(
            thread: self, threadName: "communication", http: c.metrics.map { ($0.host, $0.port) },
            readyStatus: "serving \(topology.hostCount) hosts on \(IPv4.format(c.listen))", logger: logger,
            onReady: onReady
        ) { [self] path in
            respond(path: path, exporter: exporter)
        }
        let s = snapshot()
        logger.info(
            "stopped",
            metadata: [
                "packets_received": "\(s.core.packetsReceived)", "packets_sent": "\(s.core.packetsSent)",
                "allocated_slots": "\(s.allocator.allocatedSlots)",
            ])
    }

    func respond(path: String, exporter: MetricsExporter) -> HTTPEndpoint.Response {
        let s = snapshot()
        switch path {
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4", exporter.render(s, topology: topology))
        case "/status":
            return (.ok, "application/json", StatusReport.json(StatusReport.status(s, runtime: self)))
        case "/endpoints":
            return (.ok, "application/json", StatusReport.json(StatusReport.endpoints(s)))
        case "/topology":
            return (.ok, "application/json", StatusReport.json(StatusReport.topology(topology)))
        case "/":
            return (.ok, "text/plain", "fastpass-arbiter: /metrics /status /endpoints /topology\n")
        default:
            return (.notFound, "text/plain", "not found: \(path) (try /metrics, /status, /endpoints, /topology)\n")
        }
    }
}
