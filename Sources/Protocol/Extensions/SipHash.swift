/// SipHash-2-4 (Aumasson & Bernstein), a keyed 64-bit MAC fast on short messages.
///
/// Chosen for FCP authentication because control packets are tens of bytes, where
/// SipHash costs a few tens of nanoseconds and needs no allocation, unlike HMAC-SHA256.
public struct SipHash24: Sendable {
    @usableFromInline var v0: UInt64
    @usableFromInline var v1: UInt64
    @usableFromInline var v2: UInt64
    @usableFromInline var v3: UInt64
    /// Bytes not yet forming a full 8-byte word, little-endian, low bytes first.
    @usableFromInline var pending: UInt64 = 0
    @usableFromInline var pendingCount: Int = 0
    @usableFromInline var totalCount: Int = 0

    /// - Parameters: key0, key1: the 128-bit key as two little-endian words.
    public init(key0: UInt64, key1: UInt64) {
        v0 = key0 ^ 0x736f_6d65_7073_6575
        v1 = key1 ^ 0x646f_7261_6e64_6f6d
        v2 = key0 ^ 0x6c79_6765_6e65_7261
        v3 = key1 ^ 0x7465_6462_7974_6573
    }

    @inline(__always) @usableFromInline
    static func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 &- b)) }

    @inline(__always) @usableFromInline
    mutating func round() {
        v0 = v0 &+ v1; v1 = Self.rotl(v1, 13); v1 ^= v0; v0 = Self.rotl(v0, 32)
        v2 = v2 &+ v3; v3 = Self.rotl(v3, 16); v3 ^= v2
        v0 = v0 &+ v3; v3 = Self.rotl(v3, 21); v3 ^= v0
        v2 = v2 &+ v1; v1 = Self.rotl(v1, 17); v1 ^= v2; v2 = Self.rotl(v2, 32)
    }

    @inline(__always) @usableFromInline
    mutating func compress(_ m: UInt64) {
        v3 ^= m
        round(); round()
        v0 ^= m
    }

    /// Absorbs one byte.
    @inlinable
    public mutating func append(_ byte: UInt8) {
        pending |= UInt64(byte) << (8 * UInt64(pendingCount))
        pendingCount += 1
        totalCount += 1
        if pendingCount == 8 {
            compress(pending)
            pending = 0
            pendingCount = 0
        }
    }

    /// Absorbs a 64-bit value as 8 little-endian bytes.
    @inlinable
    public mutating func append(littleEndian value: UInt64) {
        if pendingCount == 0 {
            compress(value)
            totalCount += 8
        } else {
            for i in 0..<8 { append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
        }
    }

    /// Absorbs bytes.
    @inlinable
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        while i < n && pendingCount != 0 {
            append(bytes[i])
            i += 1
        }
        while i + 8 <= n {
            compress(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            totalCount += 8
            i += 8
        }
        while i < n {
            append(bytes[i])
            i += 1
        }
    }

    /// The 64-bit tag.
    @inlinable
    public func finalize() -> UInt64 {
        var s = self
        let last = s.pending | (UInt64(truncatingIfNeeded: s.totalCount) << 56)
        s.compress(last)
        s.v2 ^= 0xFF
        s.round(); s.round(); s.round(); s.round()
        return s.v0 ^ s.v1 ^ s.v2 ^ s.v3
    }
}
