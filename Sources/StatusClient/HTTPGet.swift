import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A plain HTTP/1.0 GET over a TCP socket: all fastpassctl and the benchmarks need, with no HTTP client
/// library to build.
public enum HTTPGet {
    /// The body of `GET path` from the daemon at `address` (IPv4:port), or an error that
    /// says in one line what went wrong.
    public static func fetch(address: String, path: String, timeout: Double) throws -> String {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw StatusClientError("--address \(address): expected ADDRESS:PORT")
        }
        let host = String(address[..<colon])
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &sin.sin_addr) == 1 else {
            throw StatusClientError("--address \(address): '\(host)' is not an IPv4 address")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StatusClientError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            throw StatusClientError(
                "cannot reach fastpass-arbiter at \(address): \(String(cString: strerror(errno))) "
                    + "(is it running, with 'metrics' set to this address?)")
        }
        let request = "GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else {
            throw StatusClientError("\(address)\(path): no reply (timed out after \(timeout) s)")
        }
        let status = text[..<split.lowerBound].split(separator: "\r\n").first ?? ""
        guard status.contains(" 200 ") else { throw StatusClientError("\(address)\(path): \(status)") }
        return String(text[split.upperBound...])
    }
}

/// The daemon could not be read: why, in one line.
public struct StatusClientError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
