//! A command's standard output. `println!` panics when the reader has gone
//! (`bazaar streams | head -1`); [`outln!`] ends the command quietly then,
//! with exit code 0, as the reader chose to stop. `eprintln!` panics the
//! same way on standard error (`bazaar seed 2>&1 >/dev/null | head -1`);
//! [`errln!`] drops what cannot be written there and lets the command go on.

use std::io::{ErrorKind, Write};

/// `println!` for a command's output (see the module).
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics (see the module).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::error_line(format_args!($($arg)*))
    };
}

/// `eprint!` that never panics: a prompt, without a line break.
macro_rules! errout {
    ($($arg:tt)*) => {
        $crate::out::error_text(format_args!($($arg)*))
    };
}

/// Writes one line to standard error; a reader that has gone is ignored.
pub fn error_line(text: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(text).and_then(|()| err.write_all(b"\n"));
}

/// Writes to standard error without a line break; errors are ignored.
pub fn error_text(text: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(text).and_then(|()| err.flush());
}

/// Writes one line to standard output.
pub fn line(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(text)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            error_line(format_args!("error: cannot write the output: {e}"));
            std::process::exit(1);
        }
    }
}
