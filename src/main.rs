//! The `backfill` binary: every role of the fleet as a subcommand.

/// A worker allocates and frees a handful of buffers and task frames per message, from
/// several threads at once; mimalloc does that with less work than the system allocator
/// (BENCHMARKS.md, "Against the peer").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    backfill_cli::main()
}
