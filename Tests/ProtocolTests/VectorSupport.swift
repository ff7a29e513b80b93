import Foundation

/// Locates and loads the golden FCP vectors produced by the reference C implementation.
///
/// They live outside the repository (`../shared/fcp-vectors` next to the checkout, or the
/// directory in `FCP_VECTORS_DIR`); tests that need them are skipped with the reason when
/// they are absent.
enum ReferenceVectors {
    static var directory: URL? {
        if let explicit = ProcessInfo.processInfo.environment["FCP_VECTORS_DIR"], !explicit.isEmpty {
            let url = URL(fileURLWithPath: explicit)
            return FileManager.default.fileExists(atPath: url.appendingPathComponent("decode.json").path) ? url : nil
        }
        // Tests/ProtocolTests/VectorSupport.swift -> repository root -> ../shared/fcp-vectors
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let url = root.deletingLastPathComponent().appendingPathComponent("shared/fcp-vectors")
        return FileManager.default.fileExists(atPath: url.appendingPathComponent("decode.json").path) ? url : nil
    }

    static var available: Bool { directory != nil }

    static let skipReason =
        "FCP reference vectors not found: set FCP_VECTORS_DIR or place them at ../shared/fcp-vectors"

    static func load(_ name: String) throws -> [String: Any] {
        guard let dir = directory else { throw VectorError.missing(name) }
        let data = try Data(contentsOf: dir.appendingPathComponent(name))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw VectorError.malformed(name)
        }
        return object
    }
}

enum VectorError: Error, CustomStringConvertible {
    case missing(String)
    case malformed(String)
    case field(String)

    var description: String {
        switch self {
        case .missing(let n): "vector file \(n) missing"
        case .malformed(let n): "vector file \(n) malformed"
        case .field(let f): "vector field \(f) missing or of the wrong type"
        }
    }
}

/// Typed accessors over JSONSerialization output; 64-bit values are decimal strings.
extension Dictionary where Key == String, Value == Any {
    func u64(_ key: String) throws -> UInt64 {
        if let s = self[key] as? String, let v = UInt64(s) { return v }
        if let n = self[key] as? NSNumber { return n.uint64Value }
        throw VectorError.field(key)
    }
    func int(_ key: String) throws -> Int {
        if let n = self[key] as? NSNumber { return n.intValue }
        if let s = self[key] as? String, let v = Int(s) { return v }
        throw VectorError.field(key)
    }
    func bool(_ key: String) throws -> Bool {
        guard let b = self[key] as? Bool else { throw VectorError.field(key) }
        return b
    }
    func string(_ key: String) throws -> String {
        guard let s = self[key] as? String else { throw VectorError.field(key) }
        return s
    }
    func dict(_ key: String) throws -> [String: Any] {
        guard let d = self[key] as? [String: Any] else { throw VectorError.field(key) }
        return d
    }
    func array(_ key: String) throws -> [Any] {
        guard let a = self[key] as? [Any] else { throw VectorError.field(key) }
        return a
    }
    func dicts(_ key: String) throws -> [[String: Any]] {
        guard let a = self[key] as? [[String: Any]] else { throw VectorError.field(key) }
        return a
    }
    func bytes(_ key: String) throws -> [UInt8] { try hexBytes(string(key)) }
}

func anyU64(_ value: Any) throws -> UInt64 {
    if let s = value as? String, let v = UInt64(s) { return v }
    if let n = value as? NSNumber { return n.uint64Value }
    throw VectorError.field("u64")
}

func hexBytes(_ hex: String) throws -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(hex.count / 2)
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) ?? hex.endIndex
        guard let byte = UInt8(hex[index..<next], radix: 16) else { throw VectorError.field("hex") }
        out.append(byte)
        index = next
    }
    return out
}

func hexString(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}
