public import FastpassProtocol

/// Rewrites the checksum of a packet a test has changed by hand. Without it the receiver
/// drops the packet as corrupt before it reaches the check the test is about.
public enum TamperedPacket {
    /// Seals `packet` with the sequence numbers `receiver` reads in it at `now`: what an
    /// attacker who knows the sequence numbers can do, and what a mangled packet that
    /// still passes the checksum looks like.
    public static func reseal(_ packet: inout [UInt8], forReceiver receiver: FCPConnection, now: UInt64) {
        guard let r = packet.withUnsafeBytes({ receiver.reconstructedSequences(of: $0, now: now) }) else { return }
        packet.withUnsafeMutableBytes { FCPChecksum.store(into: $0, sequence: r.sequence, ackSequence: r.ackSequence) }
    }

    /// Seals `packet` as `sender` sealed the last packet it sent: for a packet taken from
    /// the sender and changed before delivery.
    public static func reseal(_ packet: inout [UInt8], asSentBy sender: FCPConnection) {
        packet.withUnsafeMutableBytes {
            FCPChecksum.store(into: $0, sequence: sender.highestSent, ackSequence: sender.highestReceived)
        }
    }
}
