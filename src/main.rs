fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(crmsync::cli::main())
}
