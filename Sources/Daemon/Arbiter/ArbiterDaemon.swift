import FastpassArbiter
import Foundation
import Logging
import PacketIO
import ServiceLifecycle

/// `fastpass-arbiter` as a service: starts the communication thread and the HTTP
/// endpoint, tells systemd it is ready, keeps its watchdog fed while the communication
/// thread is alive, and on graceful shutdown (SIGTERM, SIGINT) stops both.
public struct ArbiterDaemon: Service {
    public let runtime: ArbiterRuntime
    let logger: Logger
    /// Called once serving, with the HTTP port bound (nil: no HTTP endpoint).
    let onReady: @Sendable (Int?) -> Void

    public init(runtime: ArbiterRuntime, logger: Logger, onReady: @escaping @Sendable (Int?) -> Void = { _ in }) {
        self.runtime = runtime
        self.logger = logger
        self.onReady = onReady
    }

    public func run() async throws {
        try runtime.start()
        let exporter = MetricsExporter()
        let c = runtime.configuration
        _ = try await ServiceScaffold.serve(
            thread: runtime, threadName: "communication", http: c.metrics.map { ($0.host, $0.port) },
            readyStatus: "serving \(runtime.topology.hostCount) hosts on \(IPv4.format(c.listen))", logger: logger,
            onReady: onReady
        ) { [runtime] path in
            Self.respond(path: path, runtime: runtime, exporter: exporter)
        }
        let s = runtime.snapshot()
        logger.info(
            "stopped",
            metadata: [
                "packets_received": "\(s.core.packetsReceived)", "packets_sent": "\(s.core.packetsSent)",
                "allocated_slots": "\(s.allocator.allocatedSlots)",
            ])
    }

    static func respond(path: String, runtime: ArbiterRuntime, exporter: MetricsExporter) -> HTTPEndpoint.Response {
        let s = runtime.snapshot()
        switch path {
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4", exporter.render(s, topology: runtime.topology))
        case "/status":
            return (.ok, "application/json", StatusReport.json(StatusReport.status(s, runtime: runtime)))
        case "/endpoints":
            return (.ok, "application/json", StatusReport.json(StatusReport.endpoints(s)))
        case "/topology":
            return (.ok, "application/json", StatusReport.json(StatusReport.topology(runtime.topology)))
        case "/":
            return (.ok, "text/plain", "fastpass-arbiter: /metrics /status /endpoints /topology\n")
        default:
            return (.notFound, "text/plain", "not found: \(path) (try /metrics, /status, /endpoints, /topology)\n")
        }
    }
}
