//! SQL identifiers. Every table, column and index name in dynamic SQL is an `Ident`, built
//! only from validated entity and field names or fixed strings, and always written quoted.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::schema::names::{EntityName, FieldName};

/// PostgreSQL truncates identifiers longer than 63 bytes; we never let it.
const MAX_IDENT: usize = 63;

/// A name is shared, not copied: every written record names its columns, and a copy of a
/// fixed or layout name costs no allocation (a batch of an import named thousands).
#[derive(Clone)]
pub struct Ident(Name);

#[derive(Clone)]
enum Name {
    Fixed(&'static str),
    Shared(Arc<str>),
}

impl Ident {
    /// A fixed identifier from the code (system columns and tables).
    pub fn fixed(name: &'static str) -> Ident {
        debug_assert!(is_plain(name), "bad fixed identifier {name}");
        Ident(Name::Fixed(name))
    }

    fn shared(name: String) -> Ident {
        Ident(Name::Shared(name.into()))
    }

    /// An identifier read back from our own metadata (archived column names); refused unless
    /// it has the shape we generate.
    pub fn stored(name: &str) -> Option<Ident> {
        is_plain(name).then(|| Ident(Name::Shared(name.into())))
    }

    /// The table of an entity's records.
    pub fn table(entity: &EntityName) -> Ident {
        Ident::shared(format!("rec_{entity}"))
    }

    pub fn column(field: &FieldName) -> Ident {
        Ident(Name::Shared(field.as_str().into()))
    }

    /// The join table of a multi-lookup field.
    pub fn join_table(entity: &EntityName, field: &FieldName) -> Ident {
        Ident::derived("rel", &[entity.as_str(), field.as_str()])
    }

    /// An index on one column of an entity table (`ix_`, `ux_` …).
    pub fn index(prefix: &str, entity: &EntityName, column: &str) -> Ident {
        Ident::derived(prefix, &[entity.as_str(), column])
    }

    /// A compound index, named after its columns and directions (`cx_deal_stage_amount_desc`).
    pub fn compound_index(entity: &EntityName, keys: &[(&str, bool)]) -> Ident {
        Ident::keyed_index("cx", entity, keys)
    }

    /// An index a saved view asked for (`vx_deal_stage_amount_desc`).
    pub fn view_index(entity: &EntityName, keys: &[(&str, bool)]) -> Ident {
        Ident::keyed_index("vx", entity, keys)
    }

    fn keyed_index(prefix: &str, entity: &EntityName, keys: &[(&str, bool)]) -> Ident {
        let parts: Vec<String> = std::iter::once(entity.as_str().to_owned())
            .chain(keys.iter().map(|(column, desc)| match desc {
                true => format!("{column}_desc"),
                false => (*column).to_owned(),
            }))
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ident::derived(prefix, &parts)
    }

    /// `prefix_part1_part2…`, shortened with a stable hash when too long.
    pub fn derived(prefix: &str, parts: &[&str]) -> Ident {
        let mut name = prefix.to_owned();
        for part in parts {
            name.push('_');
            name.push_str(part);
        }
        if name.len() > MAX_IDENT {
            let hash = format!("{:08x}", fnv1a(name.as_bytes()));
            name.truncate(MAX_IDENT - hash.len() - 1);
            name.push('_');
            name.push_str(&hash);
        }
        debug_assert!(is_plain(&name));
        Ident::shared(name)
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Name::Fixed(name) => name,
            Name::Shared(name) => name,
        }
    }
}

impl PartialEq for Ident {
    fn eq(&self, other: &Ident) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Ident {}

impl Hash for Ident {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Ident").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names are [a-z0-9_] only, so quoting needs no escaping.
        write!(f, "\"{}\"", self.as_str())
    }
}

fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IDENT
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// FNV-1a: a tiny stable hash, so shortened names stay the same across versions.
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_stably() {
        let e = EntityName::parse(&"e".repeat(40)).unwrap();
        let f = FieldName::parse(&"f".repeat(48)).unwrap();
        let a = Ident::index("ux", &e, f.as_str());
        let b = Ident::index("ux", &e, f.as_str());
        assert_eq!(a, b);
        assert!(a.as_str().len() <= MAX_IDENT);
        assert_eq!(
            Ident::table(&e).to_string(),
            format!("\"rec_{}\"", "e".repeat(40))
        );
        assert!(Ident::stored("x\"y").is_none());
    }
}
