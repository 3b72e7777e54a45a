//! Strings as small ids: the offer index (tiers, segments, categories, tags) and the rules engine
//! (SKUs, shops, categories, collections) compare integers instead of text.

/// Each distinct string once, numbered in order of first use.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: rustc_hash::FxHashMap<Box<str>, u32>,
}

impl Interner {
    /// The id of `s`, made on first use.
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.ids.len() as u32;
        self.ids.insert(s.into(), id);
        id
    }

    /// The id of `s` if it was seen.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// How many strings it numbered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Each string with its id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.ids.iter().map(|(s, id)| (&**s, *id))
    }

    pub fn ids(&mut self, list: &[String]) -> Box<[u32]> {
        list.iter().map(|s| self.id(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Interner;

    #[test]
    fn more_strings_than_a_u16_holds_keep_distinct_ids() {
        let mut i = Interner::default();
        let ids: Vec<u32> = (0..70_000).map(|n| i.id(&format!("tag-{n}"))).collect();
        assert_eq!(ids[69_999], 69_999);
        assert_eq!(i.id("tag-65536"), 65_536, "not wrapped onto tag-0");
        assert_eq!(i.get("tag-0"), Some(0));
        assert_eq!(i.get("never"), None);
    }
}
