//! Our JSON Schemas (`schema/json/config_schema_v3.*.json`), compiled into static tables at
//! build time (`build.rs`, with the compiler in `compile.rs`): a load parses no JSON. The 14
//! versions share one table of nodes; each version is a root in it.

use super::keywords::{Additional, Format, JsonType, Pattern};

/// A string of the tables: a range of [`STRINGS`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text {
    start: u16,
    len: u16,
}

impl Text {
    /// The bytes of the string (no character-boundary checks, for comparisons).
    fn bytes(self) -> &'static [u8] {
        let start = usize::from(self.start);
        STRINGS.as_bytes().get(start..start + usize::from(self.len)).unwrap_or_default()
    }

    fn get(self) -> &'static str {
        let start = usize::from(self.start);
        STRINGS.get(start..start + usize::from(self.len)).unwrap_or_default()
    }
}

/// A range of one of the tables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    start: u16,
    len: u16,
}

impl Span {
    fn of<T>(self, table: &'static [T]) -> &'static [T] {
        let start = usize::from(self.start);
        table.get(start..start + usize::from(self.len)).unwrap_or_default()
    }
}

/// No node (for `reference` and `items`).
const NONE: u16 = u16::MAX;

/// One compiled schema node. Node indices point into [`NODES`].
#[derive(Debug)]
pub(crate) struct Node {
    reference: u16,
    /// The `type` keyword, as a set of [`JsonType::bit`]s.
    types: u8,
    /// The `type` keyword as gojsonschema prints it: `string` or `[string,number]`.
    types_text: Text,
    /// The declared properties (in [`PROPERTIES`]), sorted by [`name_order`](super::keywords::name_order).
    properties: Span,
    /// In [`PATTERNS`].
    pattern_properties: Span,
    pub(crate) additional: Additional,
    /// In [`TEXTS`].
    required: Span,
    /// In [`TEXTS`].
    enumeration: Span,
    pub(crate) format: Option<Format>,
    items: u16,
    pub(crate) unique_items: bool,
    pub(crate) minimum: Option<f64>,
    /// In [`CHILDREN`].
    one_of: Span,
    /// In [`CHILDREN`].
    any_of: Span,
}

impl Node {
    /// The node this one is a `$ref` to.
    pub(crate) fn reference(&self) -> Option<usize> {
        (self.reference != NONE).then_some(usize::from(self.reference))
    }

    /// Whether the node has a `type` keyword.
    pub(crate) fn has_types(&self) -> bool {
        self.types != 0
    }

    pub(crate) fn has_type(&self, t: JsonType) -> bool {
        self.types & t.bit() != 0
    }

    pub(crate) fn types_text(&self) -> &'static str {
        self.types_text.get()
    }

    /// The schema of a declared property.
    pub(crate) fn property(&self, name: &str) -> Option<usize> {
        let properties = self.properties.of(&PROPERTIES);
        // `keywords::name_order`, on bytes.
        let found = properties.binary_search_by(|(n, _)| {
            usize::from(n.len).cmp(&name.len()).then_with(|| n.bytes().cmp(name.as_bytes()))
        });
        found.ok().map(|i| usize::from(properties[i].1))
    }

    /// The declared properties and their schemas.
    #[cfg(test)]
    pub(crate) fn properties(&self) -> impl Iterator<Item = (&'static str, usize)> {
        self.properties.of(&PROPERTIES).iter().map(|(n, i)| (n.get(), usize::from(*i)))
    }

    pub(crate) fn pattern_properties(&self) -> impl Iterator<Item = (Pattern, usize)> {
        self.pattern_properties.of(&PATTERNS).iter().map(|&(p, i)| (p, usize::from(i)))
    }

    pub(crate) fn required(&self) -> impl Iterator<Item = &'static str> {
        self.required.of(&TEXTS).iter().map(|t| t.get())
    }

    /// The `enum` strings (none when the node has no `enum`).
    pub(crate) fn enumeration(&self) -> impl Iterator<Item = &'static str> {
        self.enumeration.of(&TEXTS).iter().map(|t| t.get())
    }

    pub(crate) fn has_enumeration(&self) -> bool {
        self.enumeration.len != 0
    }

    pub(crate) fn items(&self) -> Option<usize> {
        (self.items != NONE).then_some(usize::from(self.items))
    }

    pub(crate) fn one_of(&self) -> impl Iterator<Item = usize> {
        self.one_of.of(&CHILDREN).iter().map(|&i| usize::from(i))
    }

    pub(crate) fn any_of(&self) -> impl Iterator<Item = usize> {
        self.any_of.of(&CHILDREN).iter().map(|&i| usize::from(i))
    }

    pub(crate) fn has_one_of(&self) -> bool {
        self.one_of.len != 0
    }

    pub(crate) fn has_any_of(&self) -> bool {
        self.any_of.len != 0
    }
}

/// The compiled schema of one version.
#[derive(Debug)]
pub(crate) struct Schema {
    /// Its root node.
    pub(crate) root: usize,
}

impl Schema {
    /// The schema of the version at `index` in `validate::VERSIONS`.
    pub(crate) fn of_version(index: usize) -> Option<Self> {
        ROOTS.get(index).map(|&root| Schema { root: usize::from(root) })
    }

    /// A node of the tables.
    pub(crate) fn node(&self, index: usize) -> &'static Node {
        &NODES[index]
    }
}

include!(concat!(env!("OUT_DIR"), "/schemas.rs"));
