// mimalloc reserves its arenas up front: transitd locks memory with
// MCL_ONFAULT (src/hygiene.rs) so only the pages it touches become resident.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    transitd::cli::main(std::env::args().skip(1).collect())
}
