use clap::Parser;

fn main() {
    let cli = lifeline::cli::Cli::parse();
    if let Err(e) = lifeline::run(cli) {
        eprintln!("lifeline: {e:#}");
        std::process::exit(lifeline::exit::code_of(&e));
    }
}
