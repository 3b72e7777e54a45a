//! The catalog: the programme, shops and offers, the feed phones page through, whole loads and
//! streamed imports.

use std::io::Write as _;

use super::{Backend, catalog};
use crate::storage::{CatalogCounts, EntityKind, ImportError};

pub async fn catalog_entities_round_trip_through_the_feed(s: Backend) {
    assert_eq!(s.program().await.unwrap(), None);
    assert_eq!(s.latest_sequence().await.unwrap(), 0);
    let c = catalog();
    s.put_program(c.program.clone()).await.unwrap();
    assert_eq!(s.program().await.unwrap(), Some(c.program.clone()));
    for store in &c.stores {
        s.put_store(store.clone()).await.unwrap();
    }
    for offer in &c.offers {
        s.put_offer(offer.clone()).await.unwrap();
    }
    let (page, latest) = s.feed(0, 100).await.unwrap();
    assert_eq!(page.len(), 1 + c.stores.len() + c.offers.len());
    assert_eq!(latest, s.latest_sequence().await.unwrap());
    assert_eq!(page.last().unwrap().seq, latest);
    assert!(page.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    let first_offer = page.iter().find(|i| i.kind == EntityKind::Offer).unwrap();
    assert_eq!(first_offer.id, c.offers[0].id);
    let stored: tessera_domain::Offer =
        serde_json::from_str(first_offer.data.as_deref().unwrap()).unwrap();
    assert_eq!(stored, c.offers[0]);

    // Pages: at most `limit`, resumed after the last sequence seen.
    let (two, _) = s.feed(0, 2).await.unwrap();
    assert_eq!(two.len(), 2);
    let (rest, _) = s.feed(two[1].seq, 100).await.unwrap();
    assert_eq!(rest.len(), page.len() - 2);

    // A deletion is a tombstone after the cursor; a changed entity replaces its entry.
    s.delete_offer("of-any".into()).await.unwrap();
    s.delete_store("st-b".into()).await.unwrap();
    let mut renamed = c.stores[0].clone();
    renamed.name = "Tessera Paris Opéra".into();
    s.put_store(renamed).await.unwrap();
    let (changes, latest_now) = s.feed(latest, 100).await.unwrap();
    let summary: Vec<_> = changes
        .iter()
        .map(|i| (i.kind, i.id.as_str(), i.data.is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            (EntityKind::Offer, "of-any", false),
            (EntityKind::Store, "st-b", false),
            (EntityKind::Store, "st-a", true),
        ]
    );
    assert!(latest_now > latest);
    let (again, _) = s.feed(0, 100).await.unwrap();
    assert_eq!(
        again.iter().filter(|i| i.id == "st-a").count(),
        1,
        "latest version only"
    );
}

pub async fn a_catalog_load_replaces_everything_and_an_import_is_all_or_nothing(s: Backend) {
    let full = catalog();
    assert_eq!(
        s.load_catalog(full.clone()).await.unwrap(),
        CatalogCounts {
            stores: 2,
            offers: 4,
            deleted: 0
        }
    );
    let mut smaller = full.clone();
    smaller.offers.retain(|o| o.id != "of-any");
    smaller.stores.truncate(1);
    assert_eq!(
        s.load_catalog(smaller).await.unwrap(),
        CatalogCounts {
            stores: 1,
            offers: 3,
            deleted: 2
        }
    );
    assert_eq!(s.shop("st-b".into()).await.unwrap(), None);

    // A streamed import: the whole catalog back, from a file.
    let file = |json: &str| {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(json.as_bytes()).unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        f
    };
    let counts = s
        .import_catalog(file(&serde_json::to_string(&full).unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((counts.stores, counts.offers), (2, 4));
    assert!(s.shop("st-b".into()).await.unwrap().is_some());

    // Refused whole: nothing of it applied, nothing deleted.
    let before = s.latest_sequence().await.unwrap();
    let mut bad = serde_json::to_value(&full).unwrap();
    bad["offers"][3]["valid_to"] = "not a time".into();
    bad["stores"].as_array_mut().unwrap().truncate(1);
    let refused = s
        .import_catalog(file(&bad.to_string()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(refused, ImportError::Invalid(_)), "{refused:?}");
    assert!(matches!(
        s.import_catalog(file("{\"program\": ")).await.unwrap(),
        Err(ImportError::Syntax(_))
    ));
    assert_eq!(s.latest_sequence().await.unwrap(), before);
    assert!(s.shop("st-b".into()).await.unwrap().is_some());
}
