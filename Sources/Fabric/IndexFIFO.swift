/// A FIFO of packet indices that reuses its storage.
struct IndexFIFO {
    private var storage: [Int32] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }

    mutating func push(_ i: Int32) { storage.append(i) }

    func peek() -> Int32? { head < storage.count ? storage[head] : nil }

    mutating func pop() -> Int32? {
        guard head < storage.count else { return nil }
        let i = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return i
    }
}
