import Foundation

/// How the daemons write their status documents and how their readers parse them: one
/// place, so both sides agree.
public enum StatusJSON {
    /// `value` as pretty-printed JSON with sorted keys (stable for diffs), ending in a newline.
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    /// A status document of type `T` from `text`: a missing key or a value of another type
    /// is an error that names the key.
    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch let DecodingError.keyNotFound(key, context) {
            throw StatusDecodingError("missing \(path(context.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw StatusDecodingError("\(path(context.codingPath)): \(context.debugDescription)")
        } catch let DecodingError.valueNotFound(_, context) {
            throw StatusDecodingError("\(path(context.codingPath)): null")
        } catch let DecodingError.dataCorrupted(context) {
            throw StatusDecodingError("\(path(context.codingPath)): \(context.debugDescription)")
        }
    }

    /// A key path as scripts write it: `core.packets_received`, `hosts.3.mac`.
    static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
}

/// A status document that does not have the fields this build expects (a daemon of
/// another version, or not a status document at all).
public struct StatusDecodingError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
