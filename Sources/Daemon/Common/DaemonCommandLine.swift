import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

/// The front end both daemons share: `--config` and `--check-config`, and what follows from
/// them. Loads the file with the overrides, checks it, starts logging, runs the service,
/// and reports any failure on standard error as `program: reason` with the exit status
/// scripts and systemd go by: 2 for a configuration that cannot be used, 1 for a daemon
/// that could not start or failed while running (ArgumentParser's 64 for usage errors).
public struct DaemonCommandLine<Configuration: DaemonConfiguration>: ParsableArguments {
    /// `--config`: the file the daemon runs with; its default is the daemon's own.
    @Option(help: "Configuration file (YAML).")
    public var config: String = Configuration.defaultPath

    /// `--check-config`: a file to validate instead of running.
    @Option(name: .customLong("check-config"), help: "Validate this configuration file, print the result and exit.")
    public var checkConfig: String?

    /// ArgumentParser makes the value and fills in the options.
    public init() {}

    /// The configuration to run with: `--config` with `overrides` applied (a daemon's own
    /// flags, then `--set`). Nil when `--check-config` asked only for a check: it has
    /// printed the result then.
    public func configuration(overrides: ConfigurationOverrides, flags: KeyValuePairs<String, String?>)
        throws(ExitCode) -> Configuration?
    {
        do {
            let overrides = try overrides.overrides(flags: flags)
            if let path = checkConfig {
                let c = try Configuration.load(path: path, overrides: overrides)
                print("\(path): valid (\(c.summary))")
                for note in c.notes { print("note: \(note)") }
                return nil
            }
            return try Configuration.load(path: config, overrides: overrides)
        } catch {
            throw fail("\(error)", code: 2)
        }
    }

    /// Writes `program: message` to standard error and returns the exit status to throw,
    /// so that every failure reads the same in the journal.
    public func fail(_ message: String, code: Int32) -> ExitCode {
        FileHandle.standardError.write(Data("\(Configuration.program): \(message)\n".utf8))
        return ExitCode(code)
    }

    /// Starts logging to standard error (the journal, under systemd) at the configured
    /// level; call once, before the daemon logs anything.
    public func startLogging(_ configuration: Configuration) -> Logger {
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: Configuration.program)
    }

    /// Runs the service `start` makes until a graceful shutdown (SIGTERM, SIGINT). If it
    /// cannot be made or fails, exits with status 1 and the reason.
    public func run<S: Service>(logger: Logger, _ start: () throws -> S) async throws(ExitCode) {
        do {
            let group = ServiceGroup(
                services: [try start()], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
                logger: logger)
            try await group.run()
        } catch {
            // The daemons' start errors and ConfigurationError describe themselves as their reason.
            throw fail("\(error)", code: 1)
        }
    }
}
