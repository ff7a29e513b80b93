import Foundation
import Yams

/// A configuration file's contents as a tree of text, with where each value came from, so
/// that every error can name the field (and the line) it is about.
enum ConfigurationNode: Sendable {
    case scalar(String, line: Int?)
    case mapping([(key: String, value: ConfigurationNode)], line: Int?)
    case sequence([ConfigurationNode], line: Int?)

    var line: Int? {
        switch self {
        case .scalar(_, let line), .mapping(_, let line), .sequence(_, let line): line
        }
    }

    /// Parses YAML text.
    static func parse(yaml text: String, file: String) throws(ConfigurationError) -> ConfigurationNode {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            let reason = "\(error)".split(separator: "\n").first.map(String.init) ?? "not valid YAML"
            throw ConfigurationError(field: nil, reason: "\(file): not valid YAML: \(reason)")
        }
        guard let node else { return .mapping([], line: nil) }
        return try convert(node, path: "")
    }

    private static func convert(_ node: Node, path: String) throws(ConfigurationError) -> ConfigurationNode {
        let line = node.mark.map { $0.line }
        switch node {
        case .scalar(let s): return .scalar(s.string, line: line)
        case .alias:
            throw ConfigurationError(field: path.isEmpty ? nil : path, reason: "YAML aliases are not supported")
        case .sequence(let s):
            var items: [ConfigurationNode] = []
            for (i, item) in s.enumerated() { items.append(try convert(item, path: "\(path)[\(i)]")) }
            return .sequence(items, line: line)
        case .mapping(let m):
            var pairs: [(key: String, value: ConfigurationNode)] = []
            for (k, v) in m {
                guard let key = k.scalar?.string else {
                    throw ConfigurationError(field: path.isEmpty ? nil : path, reason: "keys must be plain names")
                }
                let child = path.isEmpty ? key : "\(path).\(key)"
                if pairs.contains(where: { $0.key == key }) {
                    throw ConfigurationError(field: child, reason: "given twice")
                }
                pairs.append((key, try convert(v, path: child)))
            }
            return .mapping(pairs, line: line)
        }
    }

    /// Sets the scalar at dotted `path` (creating mappings on the way), as a flag overrides
    /// the file. `parent` is the dotted path of this node, for the error.
    mutating func set(path: [Substring], to value: String, parent: String = "") throws(ConfigurationError) {
        guard let first = path.first else {
            self = .scalar(value, line: nil)
            return
        }
        let key = String(first)
        let child = parent.isEmpty ? key : "\(parent).\(key)"
        guard case .mapping(var pairs, let line) = self else {
            // Name the whole field asked for: the last key alone says nothing of where it was.
            let whole = ([child] + path.dropFirst().map(String.init)).joined(separator: ".")
            throw ConfigurationError(
                field: whole, reason: "cannot set a field inside \(parent): it is not a mapping of fields")
        }
        if let i = pairs.firstIndex(where: { $0.key == key }) {
            try pairs[i].value.set(path: Array(path.dropFirst()), to: value, parent: child)
        } else {
            var node: ConfigurationNode = .mapping([], line: nil)
            try node.set(path: Array(path.dropFirst()), to: value, parent: child)
            pairs.append((key, node))
        }
        self = .mapping(pairs, line: line)
    }
}

/// A configuration that cannot be used: the field (dotted path, as in the file) and why.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Dotted path of the field, e.g. `topology.hosts[2].address`; nil for the file itself.
    public var field: String?
    public var reason: String
    public var description: String { field.map { "\($0): \(reason)" } ?? reason }
    public init(field: String?, reason: String) {
        self.field = field
        self.reason = reason
    }
}

/// Reads one mapping of the tree, refusing keys nobody asked for.
struct ConfigurationReader {
    let path: String
    let pairs: [(key: String, value: ConfigurationNode)]
    private(set) var used: Set<String> = []

    init(_ node: ConfigurationNode, path: String) throws(ConfigurationError) {
        guard case .mapping(let pairs, _) = node else {
            throw ConfigurationError(field: path.isEmpty ? nil : path, reason: "expected a mapping of fields")
        }
        self.path = path
        self.pairs = pairs
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func located(_ key: String, _ node: ConfigurationNode, _ reason: String) -> ConfigurationError {
        ConfigurationError(field: field(key), reason: node.line.map { "\(reason) (line \($0 + 1))" } ?? reason)
    }

    mutating func node(_ key: String) -> ConfigurationNode? {
        used.insert(key)
        return pairs.first { $0.key == key }?.value
    }

    mutating func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let n = node(key) else { return nil }
        guard case .scalar(let s, _) = n else { throw located(key, n, "expected a single value") }
        return s
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let n = node(key) else { return nil }
        guard case .scalar(let s, _) = n, let v = Int(s) else { throw located(key, n, "expected a whole number") }
        guard range.contains(v) else {
            throw located(key, n, "\(v) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    mutating func number(_ key: String, in range: ClosedRange<Double>) throws(ConfigurationError) -> Double? {
        guard let n = node(key) else { return nil }
        guard case .scalar(let s, _) = n, let v = Double(s), v.isFinite else {
            throw located(key, n, "expected a number")
        }
        guard range.contains(v) else {
            throw located(key, n, "\(s) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    mutating func boolean(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let n = node(key) else { return nil }
        guard case .scalar(let s, _) = n else { throw located(key, n, "expected true or false") }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw located(key, n, "expected true or false, got '\(s)'")
        }
    }

    mutating func choice<T>(_ key: String, _ choices: KeyValuePairs<String, T>) throws(ConfigurationError) -> T? {
        guard let s = try string(key) else { return nil }
        guard let v = choices.first(where: { $0.key == s })?.value else {
            throw ConfigurationError(
                field: field(key), reason: "'\(s)' is not one of: \(choices.map(\.key).joined(separator: ", "))")
        }
        return v
    }

    mutating func mapping(_ key: String) throws(ConfigurationError) -> ConfigurationReader? {
        guard let n = node(key) else { return nil }
        return try ConfigurationReader(n, path: field(key))
    }

    /// A list of whole numbers: a YAML list, or one value of comma-separated numbers (as a
    /// flag gives it).
    mutating func integers(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> [Int]? {
        guard let n = node(key) else { return nil }
        let items: [String]
        switch n {
        case .scalar(let s, _):
            items = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        case .sequence(let nodes, _):
            var texts: [String] = []
            for item in nodes {
                guard case .scalar(let s, _) = item else { throw located(key, item, "expected whole numbers") }
                texts.append(s)
            }
            items = texts
        case .mapping:
            throw located(key, n, "expected a list of whole numbers")
        }
        var values: [Int] = []
        for text in items {
            guard let v = Int(text) else { throw located(key, n, "'\(text)' is not a whole number") }
            guard range.contains(v) else {
                throw located(key, n, "\(v) is out of range \(range.lowerBound)...\(range.upperBound)")
            }
            values.append(v)
        }
        return values
    }

    mutating func sequence(_ key: String) throws(ConfigurationError) -> [ConfigurationNode]? {
        guard let n = node(key) else { return nil }
        guard case .sequence(let items, _) = n else { throw located(key, n, "expected a list") }
        return items
    }

    /// Refuses any key not read: a misspelt field must not be silently ignored.
    func finish() throws(ConfigurationError) {
        for (key, _) in pairs where !used.contains(key) {
            let known = used.sorted()
            let hint = known.min { editDistance($0, key) < editDistance($1, key) }.flatMap {
                editDistance($0, key) <= 2 ? " (did you mean '\($0)'?)" : nil
            }
            throw ConfigurationError(field: field(key), reason: "unknown field\(hint ?? "")")
        }
    }
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(1, b.count) where !b.isEmpty {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}
