//! The `moodb` command. Each subcommand is a module under `commands/` exposing a clap `Args`
//! struct and `run(args) -> Result<ExitCode, Box<dyn Error>>`; names clap does not know run
//! `moodb-<name>` from PATH, as git and cargo do.

use std::process::ExitCode;

use clap::Parser;

mod bench;
mod client;
mod commands;
mod inspect;

/// mimalloc's size classes fit a packed entry closely (126 bytes for a 16-byte key and a
/// 100-byte value: the 128-byte class, against glibc's 144-byte chunk) and keep the entries
/// apart from the short-lived buffers around them, which glibc interleaves and fragments. Built
/// without transparent huge pages (`no_thp`: a 2 MiB page stays resident while any 4 KiB of it
/// is used), and see [`purge_at_once`]. Resident bytes per key for 1M keys
/// (bench/results-2026-12-01.md, fourth session): 155 against glibc's 194 (176 after
/// `malloc_trim`) and mimalloc's default 202–244.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its index in v3's `mi_option_e`, which the bindings do
/// not name): the milliseconds a freed page waits before it goes back to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed pages go back to the OS at once. With the default delay (1 s) they go only once it has
/// passed and the thread that freed them allocates again, so an idle server kept the pages of
/// its last burst (a load's buffers: 47 B per key of 1M).
fn purge_at_once() {
    #[allow(unsafe_code)]
    // SAFETY: sets one of mimalloc's options, before any thread but this one exists.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0)
    };
}

fn main() -> ExitCode {
    purge_at_once();
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("moodb: error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_15_is_mimallocs_purge_delay() {
        // The bindings do not name the option: its default (1,000 ms in the options table of
        // the mimalloc the crate builds) shows the index is the one meant, and setting it holds.
        #[allow(unsafe_code)]
        // SAFETY: reads and sets one of mimalloc's options.
        let (before, after) = unsafe {
            let before = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
            purge_at_once();
            (
                before,
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
            )
        };
        assert_eq!((before, after), (1000, 0));
    }
}
