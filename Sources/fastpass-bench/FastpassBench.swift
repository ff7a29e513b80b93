import ArgumentParser

@main
struct FastpassBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastpass-bench",
        abstract: "Benchmarks of the Fastpass protocol, allocator and daemons. Run in release mode.",
        subcommands: [
            CodecBenchmark.self, AllocatorBenchmark.self, PathsBenchmark.self, FCPEndpointCommand.self,
            FCPLoadCommand.self,
        ])
}
