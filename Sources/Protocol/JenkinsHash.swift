/// Bob Jenkins' lookup3 final mix, in the two shapes the reference FCP uses.
///
/// FCP seeds its checksum and derives sequence-number bases from these hashes, so the
/// arithmetic must match the reference bit for bit (`jhash.json` pins it).
public enum JenkinsHash {
    /// The golden-ratio constant lookup3 adds to every initial value.
    public static let initialValue: UInt32 = 0xDEAD_BEEF

    @usableFromInline @inline(__always)
    static func rotate(_ x: UInt32, _ k: UInt32) -> UInt32 {
        (x << k) | (x >> (32 &- k))
    }

    @usableFromInline @inline(__always)
    static func finalMix(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32) {
        c ^= b; c = c &- rotate(b, 14)
        a ^= c; a = a &- rotate(c, 11)
        b ^= a; b = b &- rotate(a, 25)
        c ^= b; c = c &- rotate(b, 16)
        a ^= c; a = a &- rotate(c, 4)
        b ^= a; b = b &- rotate(a, 14)
        c ^= b; c = c &- rotate(b, 24)
    }

    @usableFromInline @inline(__always)
    static func mixWords(_ a: UInt32, _ b: UInt32, _ c: UInt32, seed: UInt32) -> UInt32 {
        var a = a &+ seed
        var b = b &+ seed
        var c = c &+ seed
        finalMix(&a, &b, &c)
        return c
    }

    /// `jhash_3words(a, b, c, initval)`.
    @inlinable
    public static func hash3(_ a: UInt32, _ b: UInt32, _ c: UInt32, initval: UInt32) -> UInt32 {
        mixWords(a, b, c, seed: initval &+ initialValue &+ (3 << 2))
    }

    /// `jhash_1word(a, initval)`.
    @inlinable
    public static func hash1(_ a: UInt32, initval: UInt32) -> UInt32 {
        mixWords(a, 0, 0, seed: initval &+ initialValue &+ (1 << 2))
    }
}
