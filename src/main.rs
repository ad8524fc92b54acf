use clap::Parser;
use posterior_lab::cli;

fn main() {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        // --help and --version print and succeed; a bad argument is a bad input like any
        // other: clap's message, exit status 1 (the README's promise), never 2.
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = cli::run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
