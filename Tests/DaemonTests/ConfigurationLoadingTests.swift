import FastpassDaemon
import Foundation
import Testing

/// The loading both daemons share: `--set` parsing, the file read, overrides applied to
/// the file, and errors that say which field, file or assignment is wrong.
@Suite("Shared configuration loading and overrides")
struct ConfigurationLoadingTests {
    /// Writes `text` to a file of its own and returns its path.
    func file(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fastpass-\(UUID().uuidString).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// The description of what `body` throws; nil if it does not.
    func failure(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("--set splits at the first '=' and refuses an assignment without a field")
    func assignments() throws {
        #expect(try ConfigurationOverrides.assignment("a.b=c") == ("a.b", "c"))
        #expect(
            try ConfigurationOverrides.assignment("dpdk.eal_args=--vdev=net_null0") == (
                "dpdk.eal_args", "--vdev=net_null0"
            ))
        #expect(try ConfigurationOverrides.assignment("log_level=") == ("log_level", ""))
        for bad in ["nokey", "=x", ""] {
            let e = failure { _ = try ConfigurationOverrides.assignment(bad) }
            #expect(e == "--set \(bad): expected FIELD=VALUE")
        }
    }

    @Test("a bad --set is a usage error; --set comes after the daemon's own flags and --log-level")
    func commandLine() throws {
        do {
            _ = try ConfigurationOverrides.parse(["--set", "nokey"])
            Issue.record("--set nokey was accepted")
        } catch {
            #expect(ConfigurationOverrides.message(for: error) == "--set nokey: expected FIELD=VALUE")
        }
        let o = try ConfigurationOverrides.parse([
            "--set", "log_level=debug", "--log-level", "info", "--set", "metrics=none",
        ])
        let pairs = try o.overrides(flags: ["listen": "10.0.0.9", "io": nil])
        #expect(pairs.map(\.0) == ["listen", "log_level", "log_level", "metrics"])
        #expect(pairs.map(\.1) == ["10.0.0.9", "info", "debug", "none"])
    }

    @Test("a file with overrides: the last override wins, both daemons")
    func loadWithOverrides() throws {
        let arbiter = try file(ConfigurationTests.valid)
        let a = try ArbiterDaemonConfiguration.load(
            path: arbiter, overrides: [("log_level", "info"), ("log_level", "debug"), ("metrics", "none")])
        #expect(a.logLevel == "debug" && a.metrics == nil && a.summary == "2 hosts, 2 racks, 2 spines")
        let agent = try file(AgentDaemonConfigurationTests.valid)
        let g = try AgentDaemonConfiguration.load(path: agent, overrides: [("metrics", "127.0.0.1:9465")])
        #expect(g.metrics?.port == 9465 && g.summary == "2 peers" && g.notes.isEmpty)
    }

    @Test("each bad input is refused with the field, file or assignment it is about")
    func errors() throws {
        let arbiter = try file(ConfigurationTests.valid)
        let agent = try file(AgentDaemonConfigurationTests.valid)
        let cases: [(String?, String)] = [
            (
                failure { _ = try ArbiterDaemonConfiguration.load(path: arbiter, overrides: [("bogus.key", "1")]) },
                "bogus: unknown field"
            ),
            (
                failure { _ = try AgentDaemonConfiguration.load(path: agent, overrides: [("pacing.mod", "busy")]) },
                "pacing.mod: unknown field (did you mean 'mode'?)"
            ),
            (
                failure { _ = try ArbiterDaemonConfiguration.load(path: arbiter, overrides: [("log_level", "loud")]) },
                "log_level: 'loud' is not one of: trace, debug, info, notice, warning, error, critical"
            ),
            (
                failure { _ = try AgentDaemonConfiguration.load(path: agent, overrides: [("metrics", "nonsense")]) },
                "metrics: 'nonsense' is not ADDRESS:PORT (port 1...65535)"
            ),
            (
                failure { _ = try ArbiterDaemonConfiguration.load(path: arbiter, overrides: [("listen.x", "1")]) },
                "listen.x: cannot set a field inside listen: it is not a mapping of fields"
            ),
            (
                failure { _ = try AgentDaemonConfiguration.load(path: "/nonexistent/agent.yaml") },
                "/nonexistent/agent.yaml: cannot read: no such file"
            ),
            (
                failure { _ = try ArbiterDaemonConfiguration.load(path: NSTemporaryDirectory()) },
                "\(NSTemporaryDirectory()): cannot read: is a directory"
            ),
        ]
        for (error, expected) in cases {
            #expect(error == expected)
        }
        let list = try file("- a\n- b\n")
        #expect(
            failure { _ = try AgentDaemonConfiguration.load(path: list) } == "\(list): expected a mapping of fields")
    }
}
