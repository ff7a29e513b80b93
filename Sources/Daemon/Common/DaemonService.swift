import Logging
import ServiceLifecycle

/// A daemon's runtime as ``DaemonService`` runs it: what it does between start and a
/// graceful shutdown is its own (mostly ``ServiceScaffold``'s), how it is handed to
/// ServiceLifecycle is the same for both daemons.
public protocol DaemonRuntime: Sendable {
    /// Starts the data path and serves until a graceful shutdown (SIGTERM, SIGINT) or until
    /// the data path fails; then stops. Calls `onReady` once serving, with the HTTP port
    /// bound (nil: no HTTP endpoint), so that tests can find an ephemeral port.
    func serveUntilShutdown(logger: Logger, onReady: @escaping @Sendable (Int?) -> Void) async throws
}

/// A daemon as a ServiceLifecycle service: its runtime, the logger and the readiness
/// callback, run by the runtime itself.
public struct DaemonService<Runtime: DaemonRuntime>: Service {
    /// The daemon's data path and its state, which tests read while it runs.
    public let runtime: Runtime
    let logger: Logger
    /// Called once serving, with the HTTP port bound (nil: no HTTP endpoint).
    let onReady: @Sendable (Int?) -> Void

    /// `onReady` defaults to nothing: only tests wait for the port.
    public init(runtime: Runtime, logger: Logger, onReady: @escaping @Sendable (Int?) -> Void = { _ in }) {
        self.runtime = runtime
        self.logger = logger
        self.onReady = onReady
    }

    /// Runs until a graceful shutdown; ServiceLifecycle calls it.
    public func run() async throws {
        try await runtime.serveUntilShutdown(logger: logger, onReady: onReady)
    }
}
