// swift-tools-version: 6.1
// Fastpass: a centralised datacenter arbiter (timeslot allocation and path selection)
// and the host agent that sends each packet in its granted timeslot.

import PackageDescription

let package = Package(
    name: "fastpass",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FastpassProtocol", targets: ["FastpassProtocol"]),
        .library(name: "FastpassArbiter", targets: ["FastpassArbiter"]),
        .library(name: "FastpassAgent", targets: ["FastpassAgent"]),
        .library(name: "FastpassFabric", targets: ["FastpassFabric"]),
        .executable(name: "fastpass-bench", targets: ["fastpass-bench"]),
        .executable(name: "fastpass-sim", targets: ["fastpass-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
    ],
    targets: [
        // FCP: codec, connection state machine and the demand bookkeeping both ends share.
        // Sans-IO: no sockets, no threads, no clock reads.
        .target(
            name: "FastpassProtocol",
            path: "Sources/Protocol"
        ),
        // Linux calls the Glibc module does not export: thread pinning, the CPU relax hint.
        .target(
            name: "CPlatform",
            path: "Sources/CPlatform"
        ),
        // The arbiter's core: topology, timeslot allocator, path selection, sans-IO; and the
        // threaded pipeline that runs the same allocation stages on pinned cores.
        .target(
            name: "FastpassArbiter",
            dependencies: ["FastpassProtocol", "CPlatform", .product(name: "Atomics", package: "swift-atomics")],
            path: "Sources/Arbiter"
        ),
        // The host agent's core: classifies outgoing packets, queues them per destination,
        // turns them into timeslots of demand and releases them at their slot. Sans-IO.
        .target(
            name: "FastpassAgent",
            dependencies: ["FastpassProtocol"],
            path: "Sources/EndpointAgent"
        ),
        // A discrete-event leaf–spine fabric that runs the real arbiter and agent cores on a
        // virtual clock, with a DCTCP-style baseline transport for comparison.
        .target(
            name: "FastpassFabric",
            dependencies: ["FastpassProtocol", "FastpassArbiter", "FastpassAgent"],
            path: "Sources/Fabric"
        ),
        .executableTarget(
            name: "fastpass-sim",
            dependencies: ["FastpassFabric", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/fastpass-sim"
        ),
        // Counts malloc calls by interposing the allocator inside the benchmark binary only,
        // so benchmarks can prove the hot paths allocate nothing.
        .target(
            name: "MallocCounter",
            path: "Sources/MallocCounter"
        ),
        .executableTarget(
            name: "fastpass-bench",
            dependencies: [
                "FastpassProtocol",
                "FastpassArbiter",
                "CPlatform",
                "MallocCounter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/fastpass-bench"
        ),
        .testTarget(
            name: "ProtocolTests",
            dependencies: ["FastpassProtocol"],
            path: "Tests/ProtocolTests"
        ),
        // What several test suites share: the seeded random generator.
        .target(
            name: "TestSupport",
            path: "Tests/Support"
        ),
        .testTarget(
            name: "ArbiterTests",
            dependencies: ["FastpassArbiter", "FastpassProtocol", "TestSupport"],
            path: "Tests/ArbiterTests"
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: ["FastpassAgent", "FastpassArbiter", "FastpassProtocol", "TestSupport"],
            path: "Tests/AgentTests"
        ),
        .testTarget(
            name: "FabricTests",
            dependencies: ["FastpassFabric"],
            path: "Tests/FabricTests"
        ),
    ]
)
