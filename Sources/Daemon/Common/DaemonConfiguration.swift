import Foundation

/// A daemon's validated configuration, as the shared loader and command line handle it:
/// each daemon declares and checks only its own fields in ``parse(yaml:file:overrides:)``;
/// reading the file, applying overrides and reporting are the same for both.
public protocol DaemonConfiguration: Sendable {
    /// The daemon's name in messages, e.g. `fastpass-arbiter`.
    static var program: String { get }
    /// Where `--config` looks when not given.
    static var defaultPath: String { get }
    /// Reads a configuration from YAML `text` (named `file` in messages), then applies
    /// `overrides` (dotted field path → value, in order, as flags give them), and validates
    /// it all.
    static func parse(yaml text: String, file: String, overrides: [(String, String)]) throws(ConfigurationError)
        -> Self
    /// What `--check-config` says about a valid file after `valid`, e.g. `3 peers`.
    var summary: String { get }
    /// What a valid configuration implies that an operator must act on outside the daemon,
    /// one line each; `--check-config` prints them after `valid`.
    var notes: [String] { get }
    /// The log level the daemon starts logging at, by its `swift-log` name.
    var logLevel: String { get }
}

extension DaemonConfiguration {
    public var notes: [String] { [] }

    /// Reads and parses the file at `path`; an unreadable file is an error that names it.
    public static func load(path: String, overrides: [(String, String)] = []) throws(ConfigurationError) -> Self {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(field: nil, reason: "\(path): cannot read: \(fileErrorReason(error, path: path))")
        }
        return try parse(yaml: text, file: path, overrides: overrides)
    }
}

extension ConfigurationReader {
    /// The top level of a configuration file with `overrides` applied: what every daemon's
    /// `parse` starts from, so that a flag and the file are read by the same code.
    static func root(yaml text: String, file: String, overrides: [(String, String)]) throws(ConfigurationError)
        -> ConfigurationReader
    {
        var tree = try ConfigurationNode.parse(yaml: text, file: file)
        guard case .mapping = tree else {
            // Said here, with the file, because the reader of the top level has no field to name.
            throw ConfigurationError(field: nil, reason: "\(file): expected a mapping of fields")
        }
        for (path, value) in overrides {
            try tree.set(path: path.split(separator: "."), to: value)
        }
        return try ConfigurationReader(tree, path: "")
    }
}

/// Why a file could not be read, in the words of `strerror` where there are some: Foundation's
/// own text for these ("The operation could not be completed") names no cause.
func fileErrorReason(_ error: any Error, path: String) -> String {
    let e = error as NSError
    if let underlying = e.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if e.domain == NSCocoaErrorDomain && e.code == NSFileReadNoSuchFileError { return "no such file" }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        return "is a directory"
    }
    return e.localizedDescription
}
