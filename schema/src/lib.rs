//! Compose v3 stack files, loaded exactly as `docker stack config` loads them.

pub mod value;

pub use value::{Map, Value};
pub mod cluster;
pub mod decode;
pub mod depth;
pub mod envfile;
pub mod environment;
pub mod gostr;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod model;
pub mod paths;
pub mod ports;
pub mod shlex;
pub mod units;
pub mod validate;
pub mod volume_spec;
pub mod yaml;
