//! The pieces of the example binaries that more than one of them (and their tests) use:
//! the drill's compose [`stack`], the [`live`] progress view, and `opsbook`'s [`system`] file
//! and [`cli`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod live;
pub mod stack;
pub mod system;
