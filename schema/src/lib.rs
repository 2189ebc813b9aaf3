//! Compose v3 stack files, loaded exactly as `docker stack config` loads them.

pub mod value;

pub use value::{Map, Value};
pub mod yaml;
pub mod gostr;
pub mod interpolate;
pub mod validate;
pub mod cluster;
pub mod decode;
pub mod environment;
pub mod envfile;
pub mod load;
pub mod merge;
pub mod model;
pub mod paths;
pub mod ports;
pub mod shlex;
pub mod units;
pub mod volume_spec;
