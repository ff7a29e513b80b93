import Foundation
import PacketIO
import Testing

/// Raw protocol-222 sockets on loopback: what one sends the other receives, with the
/// kernel's arrival time when asked for it. Needs root (`CAP_NET_RAW`).
@Suite("Raw IPv4 socket on loopback", .serialized)
struct RawIPv4SocketTests {
    static var skipReason: String? { getuid() != 0 ? "needs root (CAP_NET_RAW) for raw sockets" : nil }

    static let receiverAddress = IPv4.parse("127.0.0.42")!
    static let senderAddress = IPv4.parse("127.0.0.43")!

    /// Sends one datagram carrying `marker` and returns the batch index it came back at,
    /// skipping anything else on the protocol (bounded to a second).
    static func sendAndReceive(
        marker: UInt8, from sender: RawIPv4Socket, to receiver: RawIPv4Socket, into rx: inout PacketBatch
    ) throws -> Int? {
        var tx = PacketBatch(capacity: 1)
        _ = tx.append { b in
            for i in 0..<32 { b[i] = marker }
            return (receiverAddress, 32)
        }
        #expect(try sender.send(&tx) == 1)
        let deadline = RealtimeClock.now() + 1_000_000_000
        while RealtimeClock.now() < deadline {
            let n = try receiver.receive(into: &rx, waitingUpTo: 100_000_000)
            for i in 0..<n where rx.payload(i).first == marker && rx.address(i) == senderAddress { return i }
        }
        return nil
    }

    @Test(
        "a stamped socket gives each datagram the time the kernel received it",
        .enabled(if: RawIPv4SocketTests.skipReason == nil, "\(RawIPv4SocketTests.skipReason ?? "")"))
    func arrivalTimes() throws {
        let receiver = try RawIPv4Socket(address: Self.receiverAddress)
        let sender = try RawIPv4Socket(address: Self.senderAddress)
        var rx = PacketBatch(capacity: 8)

        // Not asked for: no time.
        let unstamped = try Self.sendAndReceive(marker: 0xA1, from: sender, to: receiver, into: &rx)
        #expect(unstamped != nil)
        if let unstamped {
            let time = rx.arrivalTime(unstamped)
            #expect(time == nil)
        }
        #expect(!receiver.stampsArrivals)

        try receiver.enableReceiveTimestamps()
        #expect(receiver.stampsArrivals)
        let before = RealtimeClock.now()
        let index = try Self.sendAndReceive(marker: 0xA2, from: sender, to: receiver, into: &rx)
        let after = RealtimeClock.now()
        let i = try #require(index)
        let time = rx.arrivalTime(i)
        let length = rx.payload(i).count
        let stamp = try #require(time)
        // Between the send and our reading it, on the same clock.
        #expect(stamp >= before && stamp <= after)
        #expect(length == 32)
    }
}
