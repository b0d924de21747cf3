//! Column types known while a run is walked: (table, column) → type, from the live schema and from
//! the statements walked so far. Lint keeps it across every file of a corpus, and a squashed schema
//! dump declares hundreds of thousands of columns with a few dozen distinct column names and types,
//! so names are stored once each and the map holds three numbers per column.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct ColumnTypes {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    types: HashMap<(u32, u32), u32>,
}

impl ColumnTypes {
    pub fn new() -> ColumnTypes {
        ColumnTypes::default()
    }

    fn id(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.id(s) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    pub fn get(&self, table: &str, column: &str) -> Option<&str> {
        let key = (self.id(table)?, self.id(column)?);
        self.types.get(&key).map(|&t| &*self.names[t as usize])
    }

    /// MariaDB/MySQL: as [`get`](Self::get), else the column in any letter case (column names
    /// are case-insensitive), of the table as written or, failing that, of the one table named so
    /// in another case (what a server with `lower_case_table_names` 1 or 2 reports).
    pub fn get_any_case(&self, table: &str, column: &str) -> Option<&str> {
        if let Some(t) = self.get(table, column) {
            return Some(t);
        }
        let (table_l, column_l) = (table.to_lowercase(), column.to_lowercase());
        let name = |id: u32| &*self.names[id as usize];
        let find = |exact_table: bool| {
            let mut hits = self.types.iter().filter(|((t, c), _)| {
                (if exact_table {
                    name(*t) == table
                } else {
                    name(*t).to_lowercase() == table_l
                }) && name(*c).to_lowercase() == column_l
            });
            match (hits.next(), hits.next()) {
                (Some((_, ty)), None) => Some(name(*ty)),
                _ => None,
            }
        };
        find(true).or_else(|| find(false))
    }

    pub fn insert(&mut self, table: &str, column: &str, data_type: &str) {
        let key = (self.intern(table), self.intern(column));
        let t = self.intern(data_type);
        self.types.insert(key, t);
    }

    /// Forgets a column (its name stays interned: a later column often takes it again).
    pub fn remove(&mut self, table: &str, column: &str) {
        if let (Some(t), Some(c)) = (self.id(table), self.id(column)) {
            self.types.remove(&(t, c));
        }
    }

    /// A table with known columns named as `table` in another letter case, when no name is
    /// `table` exactly (MariaDB/MySQL: `orders` for a statement naming `Orders`). Cheap when the
    /// name is known as written (nothing is scanned); else the names first, the columns only for
    /// a name that matches.
    pub fn table_in_other_case(&self, table: &str) -> Option<&str> {
        if self.id(table).is_some() {
            return None;
        }
        let lower = table.to_lowercase();
        self.ids
            .iter()
            .filter(|(n, _)| n.to_lowercase() == lower)
            .find(|(_, id)| self.types.keys().any(|(t, _)| t == *id))
            .map(|(n, _)| &**n)
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

impl<T: AsRef<str>, C: AsRef<str>, D: AsRef<str>> FromIterator<((T, C), D)> for ColumnTypes {
    fn from_iter<I: IntoIterator<Item = ((T, C), D)>>(iter: I) -> ColumnTypes {
        let mut out = ColumnTypes::new();
        for ((t, c), d) in iter {
            out.insert(t.as_ref(), c.as_ref(), d.as_ref());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::ColumnTypes;

    #[test]
    fn behaves_as_a_map_of_pairs() {
        let mut m: ColumnTypes = [(("t", "a"), "int"), (("u", "a"), "text")]
            .into_iter()
            .collect();
        assert_eq!(m.get("t", "a"), Some("int"));
        assert_eq!(m.get("u", "a"), Some("text"));
        // A name known as a table is not a column of itself, and the other way round.
        assert_eq!(m.get("a", "t"), None);
        assert_eq!(m.get("t", "b"), None);
        m.insert("t", "a", "bigint");
        assert_eq!((m.get("t", "a"), m.len()), (Some("bigint"), 2));
        m.remove("t", "a");
        m.remove("t", "never");
        assert_eq!(
            (m.get("t", "a"), m.get("u", "a"), m.len()),
            (None, Some("text"), 1)
        );
        m.insert("t", "a", "text");
        assert_eq!(m.get("t", "a"), Some("text"));
        // Names are case-sensitive here: folding happened when the IR was built.
        assert_eq!(m.get("T", "a"), None);
    }
}
