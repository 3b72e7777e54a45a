//! The seed catalog shipped with the project (`server/seed/catalog.json`, made by
//! `scripts/gen-seed.py`): stores in French cities around their real centres, offers of every
//! kind. `tessera serve --seed` loads it.

use tessera_domain::catalog::Catalog;

/// The seed catalog's JSON.
pub const CATALOG_JSON: &str = include_str!("../seed/catalog.json");

/// The seed catalog, parsed.
pub fn catalog() -> Result<Catalog, serde_json::Error> {
    serde_json::from_str(CATALOG_JSON)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_seed_catalog_is_valid() {
        let c = super::catalog().unwrap();
        c.validate().unwrap();
        assert!(c.stores.len() >= 200, "{} stores", c.stores.len());
        let kinds: std::collections::HashSet<_> = c
            .offers
            .iter()
            .map(|o| std::mem::discriminant(&o.kind))
            .collect();
        assert_eq!(kinds.len(), 6, "offers of every kind");
        // Every store is in metropolitan France.
        for s in &c.stores {
            assert!((41.0..51.5).contains(&s.latitude), "{}", s.id);
            assert!((-5.5..10.0).contains(&s.longitude), "{}", s.id);
        }
    }
}
