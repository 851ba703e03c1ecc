//! The `moodb` command: one clap subcommand per module under `commands/`.

fn main() {
    println!("moodb {}", env!("CARGO_PKG_VERSION"));
}
