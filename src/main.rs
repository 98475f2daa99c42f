fn main() {
    std::process::exit(proctor::cli::main());
}
