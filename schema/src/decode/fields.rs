//! Decoding of single fields: strings, numbers, lists, durations, sizes.

use super::DecodeError;
use crate::gostr::sprint;
use crate::model::Duration;
use crate::value::{Map, Value};

/// Reads fields of one mapping, naming them in errors as mapstructure does.
pub(crate) struct Fields<'a> {
    pub map: &'a Map,
    pub path: String,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map, path: impl Into<String>) -> Self {
        Fields { map, path: path.into() }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !matches!(v, Value::Null))
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    pub fn sub(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) }
    }

    pub fn string(&self, key: &str, name: &str) -> Result<String, DecodeError> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(other) => Err(DecodeError::wrong_type(&self.sub(name), "string", other)),
        }
    }

    pub fn boolean(&self, key: &str, name: &str) -> Result<bool, DecodeError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(DecodeError::wrong_type(&self.sub(name), "bool", other)),
        }
    }

    pub fn opt_bool(&self, key: &str, name: &str) -> Result<Option<bool>, DecodeError> {
        Ok(match self.get(key) {
            None => None,
            Some(_) => Some(self.boolean(key, name)?),
        })
    }

    pub fn int(&self, key: &str, name: &str) -> Result<i64, DecodeError> {
        match self.get(key) {
            None => Ok(0),
            Some(Value::Int(i)) => Ok(*i),
            Some(Value::Float(f)) if f.fract() == 0.0 => Ok(*f as i64),
            Some(other) => Err(DecodeError::wrong_type(&self.sub(name), "int", other)),
        }
    }

    pub fn uint(&self, key: &str, name: &str) -> Result<Option<u64>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Int(i)) if *i < 0 => Err(DecodeError(format!(
                "decoding failed due to the following error(s):\n\ncannot parse '{}', {i} overflows uint",
                self.sub(name)
            ))),
            Some(Value::Int(i)) => Ok(Some(i.unsigned_abs())),
            Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 0.0 => Ok(Some(*f as u64)),
            Some(other) => Err(DecodeError::wrong_type(&self.sub(name), "uint64", other)),
        }
    }

    pub fn float(&self, key: &str, name: &str) -> Result<f64, DecodeError> {
        match self.get(key) {
            None => Ok(0.0),
            Some(Value::Int(i)) => Ok(*i as f64),
            Some(Value::Float(f)) => Ok(*f),
            Some(other) => Err(DecodeError::wrong_type(&self.sub(name), "float32", other)),
        }
    }

    /// `[]string`: items must be strings (numbers are printed).
    pub fn strings(&self, key: &str, name: &str) -> Result<Vec<String>, DecodeError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Seq(items)) => Ok(items.iter().map(sprint).collect()),
            Some(other) => Err(DecodeError::wrong_type(&self.sub(name), "[]string", other)),
        }
    }

    /// `StringList`: a string or a list of strings.
    pub fn string_list(&self, key: &str, name: &str) -> Result<Vec<String>, DecodeError> {
        match self.get(key) {
            Some(Value::Str(s)) => Ok(vec![s.clone()]),
            _ => self.strings(key, name),
        }
    }

    pub fn duration(&self, key: &str, name: &str) -> Result<Option<Duration>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => crate::gostr::parse_duration(s)
                .map(Some)
                .map_err(|e| DecodeError::field(&self.sub(name), e)),
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(other) => Err(DecodeError::field(
                &self.sub(name),
                format!("invalid type {} for duration", super::go_type(other)),
            )),
        }
    }

    pub fn size(&self, key: &str, name: &str) -> Result<i64, DecodeError> {
        match self.get(key) {
            None => Ok(0),
            Some(Value::Int(i)) => Ok(*i),
            Some(Value::Str(s)) => {
                crate::units::ram_in_bytes(s).map_err(|e| DecodeError::field(&self.sub(name), e))
            }
            Some(other) => Err(DecodeError::wrong_type(&self.sub(name), "int64", other)),
        }
    }

    pub fn map(&self, key: &str) -> Option<&'a Map> {
        self.get(key).and_then(Value::as_map)
    }
}
