import ArgumentParser

/// The overrides both daemons take last on their command line: `--log-level`, and
/// `--set FIELD=VALUE` for any field by its dotted name, so that no field needs a flag of
/// its own to be overridden.
public struct ConfigurationOverrides: ParsableArguments {
    /// `--log-level`: kept apart from `--set` because operators reach for it most.
    @Option(help: "trace, debug, info, notice, warning, error or critical (field: log_level).")
    public var logLevel: String?
    /// Every `--set`, as given; checked by ``validate()``.
    @Option(name: .customLong("set"), help: "FIELD=VALUE for any field, by its dotted name. Repeatable.")
    public var assignments: [String] = []

    /// ArgumentParser makes the value and fills in the options.
    public init() {}

    /// Refuses a malformed assignment while parsing, so it is reported as a usage error
    /// (exit 64) before any file is read.
    public func validate() throws {
        for a in assignments {
            do {
                _ = try Self.assignment(a)
            } catch {
                throw ValidationError(error.description)
            }
        }
    }

    /// The overrides in the order they apply: a daemon's own flags (field → value, nil
    /// where not given), `--log-level`, then every `--set`, so that `--set` has the last word.
    public func overrides(flags: KeyValuePairs<String, String?>) throws(ConfigurationError) -> [(String, String)] {
        var o: [(String, String)] = []
        for case (let field, let value?) in flags { o.append((field, value)) }
        if let logLevel { o.append(("log_level", logLevel)) }
        for a in assignments { o.append(try Self.assignment(a)) }
        return o
    }

    /// Splits `FIELD=VALUE` at its first `=`; the value may hold more of them (EAL
    /// arguments do).
    public static func assignment(_ text: String) throws(ConfigurationError) -> (String, String) {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw ConfigurationError(field: nil, reason: "--set \(text): expected FIELD=VALUE")
        }
        return (String(text[..<eq]), String(text[text.index(after: eq)...]))
    }
}
