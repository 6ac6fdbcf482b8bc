use clap::Parser;

fn main() {
    // Like any Unix filter: when the reader of our output goes away (`lifeline read … | head`),
    // end quietly instead of failing on the broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = lifeline::cli::Cli::parse();
    if let Err(e) = lifeline::run(cli) {
        eprintln!("lifeline: {e:#}");
        std::process::exit(lifeline::exit::code_of(&e));
    }
}
