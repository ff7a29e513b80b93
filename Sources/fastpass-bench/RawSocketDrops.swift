import Foundation

/// Packets the kernel dropped because an FCP raw socket (IP protocol 222) was full, summed
/// over every such socket of this network namespace (the `drops` column of /proc/net/raw):
/// a load test whose sockets overflow measures the kernel's queues, not the arbiter.
enum RawSocketDrops {
    /// The total so far; 0 where /proc/net/raw cannot be read.
    static func read() -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/net/raw", encoding: .utf8) else { return 0 }
        return total(in: text)
    }

    /// The FCP sockets' drops in a /proc/net/raw listing: a raw socket's local address is
    /// `ADDRESS:PROTOCOL` in hex, and drops is the last column.
    static func total(in listing: String) -> UInt64 {
        var sum: UInt64 = 0
        for line in listing.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 2, fields[1].hasSuffix(":00DE"), let drops = fields.last.flatMap({ UInt64($0) })
            else { continue }
            sum &+= drops
        }
        return sum
    }
}
