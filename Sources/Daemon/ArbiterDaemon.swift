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
        var http: HTTPEndpoint?
        if let m = runtime.configuration.metrics {
            do {
                http = try await HTTPEndpoint.start(host: m.host, port: m.port) { [runtime] path in
                    Self.respond(path: path, runtime: runtime, exporter: exporter)
                }
            } catch {
                runtime.stop()
                throw error
            }
            logger.info("serving metrics and status", metadata: ["http": "\(m.host):\(http?.port ?? m.port)"])
        }
        let c = runtime.configuration
        SystemdNotifier.notify(
            "READY=1\nSTATUS=serving \(runtime.topology.hostCount) hosts on \(IPv4.format(c.listen))")
        onReady(http?.port)
        let watchdog = SystemdNotifier.watchdogInterval
        await withTaskGroup(of: Void.self) { group in
            if let interval = watchdog {
                group.addTask { [runtime, logger] in
                    await SystemdNotifier.feedWatchdog(every: interval, thread: "communication", logger: logger) {
                        runtime.lastHeartbeat
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        SystemdNotifier.notify("STOPPING=1")
        logger.info("stopping")
        if !runtime.stop() { logger.error("the communication thread did not stop within 5 s") }
        await http?.close()
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
