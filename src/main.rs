fn main() -> std::process::ExitCode {
    transitd::cli::main(std::env::args().skip(1).collect())
}
