//! YAML in and out, with the exact behaviour of the Go library Docker uses (yaml.v3):
//! how plain scalars resolve to types, merge keys, duplicate keys, alias limits and error
//! wording when reading; key order, quoting and block styles when writing.

mod compose;
mod emit;
mod resolve;

pub use compose::{ParseError, line_of, parse};
pub use emit::{Deferred, Out, ToOut, emit, sort_keys};
pub use resolve::{format_float, go_parse_float};
