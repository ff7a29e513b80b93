import Foundation
import Logging
import ServiceLifecycle

/// A daemon's data-path thread as the service scaffold drives it: started once, fed to
/// systemd's watchdog while it goes round, stopped on shutdown.
protocol ServiceThread: Sendable {
    /// When the thread last went round its loop (ns, wall clock).
    var lastHeartbeat: UInt64 { get }
    /// Why the thread gave up by itself (nil while it runs, or if it cannot).
    var failure: String? { get }
    /// Asks the thread to stop and waits up to `timeout` seconds; returns whether it did.
    func stop(timeout: Double) -> Bool
}

/// What `fastpass-arbiter` and `fastpass-agent` do the same way as services: serve HTTP,
/// tell systemd they are ready, feed its watchdog while their thread goes round, and run
/// until a graceful shutdown (SIGTERM, SIGINT) or until the thread gives up by itself;
/// then stop the thread and the HTTP endpoint. The daemons keep what differs: how they
/// start, what they serve, and what they log at the end.
enum ServiceScaffold {
    /// Serves until shutdown; the thread must be started. Returns the thread's own failure,
    /// if that is what ended it. If HTTP cannot be served, stops the thread and throws.
    static func serve(
        thread: some ServiceThread, threadName: String, http address: (host: String, port: Int)?,
        readyStatus: String, logger: Logger, onReady: @Sendable (Int?) -> Void,
        respond: @escaping @Sendable (String) -> HTTPEndpoint.Response
    ) async throws(ArbiterStartError) -> String? {
        var http: HTTPEndpoint?
        if let address {
            do {
                http = try await HTTPEndpoint.start(host: address.host, port: address.port, respond: respond)
            } catch {
                _ = thread.stop(timeout: 5)
                throw error
            }
            logger.info(
                "serving metrics and status", metadata: ["http": "\(address.host):\(http?.port ?? address.port)"])
        }
        SystemdNotifier.notify("READY=1\nSTATUS=\(readyStatus)")
        onReady(http?.port)
        let watchdog = SystemdNotifier.watchdogInterval
        let failure = await withTaskGroup(of: String?.self) { group in
            if let interval = watchdog {
                group.addTask { [thread, logger] in
                    await SystemdNotifier.feedWatchdog(every: interval, thread: threadName, logger: logger) {
                        thread.lastHeartbeat
                    }
                    return nil
                }
            }
            group.addTask { [thread] in
                while !Task.isCancelled {
                    if let f = thread.failure { return f }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return nil
            }
            group.addTask {
                try? await gracefulShutdown()
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        SystemdNotifier.notify("STOPPING=1")
        logger.info("stopping")
        if !thread.stop(timeout: 5) { logger.error("the \(threadName) thread did not stop within 5 s") }
        await http?.close()
        return failure
    }
}
