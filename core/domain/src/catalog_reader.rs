//! A whole catalog read from a stream one entity at a time: the programme, then each shop and
//! offer handed to a sink as soon as it is read, its display text cleaned and its rules checked.
//! Memory stays that of one entity however large the document (a retailer's catalog of 100,000
//! shops and 200,000 offers is a few hundred megabytes of JSON).
//!
//! The document is [`crate::catalog::Catalog`]'s: an object with `program`, `stores` and
//! `offers`, in any order, each once; unknown members are refused, as they are everywhere else.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};

use crate::Program;
use crate::catalog::{CatalogError, Offer, Store};

/// One entity of the catalog, cleaned and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogItem {
    Program(Program),
    Store(Store),
    Offer(Offer),
}

/// What a streamed catalog held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    pub stores: u64,
    pub offers: u64,
}

/// Why a streamed catalog was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError<E> {
    /// Not JSON, or not shaped as a catalog (with where).
    #[error("{0}")]
    Syntax(String),
    /// An entity breaks a rule.
    #[error(transparent)]
    Invalid(CatalogError),
    /// The sink refused an entity.
    #[error("{0}")]
    Sink(E),
}

enum Failure<E> {
    Invalid(CatalogError),
    Sink(E),
}

struct Ctx<'a, E, F> {
    sink: &'a mut F,
    failure: &'a RefCell<Option<Failure<E>>>,
    counts: ReadCounts,
}

impl<E, F: FnMut(CatalogItem) -> Result<(), E>> Ctx<'_, E, F> {
    /// Hands `item` on; a refusal is kept aside and parsing stops with a marker error.
    fn give<D: serde::de::Error>(
        &mut self,
        item: Result<CatalogItem, CatalogError>,
    ) -> Result<(), D> {
        let failure = match item {
            Ok(item) => match (self.sink)(item) {
                Ok(()) => return Ok(()),
                Err(e) => Failure::Sink(e),
            },
            Err(e) => Failure::Invalid(e),
        };
        *self.failure.borrow_mut() = Some(failure);
        Err(D::custom("refused"))
    }
}

struct Top<'c, 'a, E, F>(&'c mut Ctx<'a, E, F>);

impl<'de, E, F: FnMut(CatalogItem) -> Result<(), E>> Visitor<'de> for Top<'_, '_, E, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a catalog object with program, stores and offers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut program, mut stores, mut offers) = (false, false, false);
        while let Some(key) = map.next_key::<String>()? {
            let seen = match key.as_str() {
                "program" => &mut program,
                "stores" => &mut stores,
                "offers" => &mut offers,
                other => {
                    return Err(A::Error::unknown_field(
                        other,
                        &["program", "stores", "offers"],
                    ));
                }
            };
            if *seen {
                return Err(A::Error::custom(format!("duplicate field `{key}`")));
            }
            *seen = true;
            match key.as_str() {
                "program" => {
                    let p: Program = map.next_value()?;
                    let item = p
                        .validated()
                        .map(CatalogItem::Program)
                        .map_err(|e| CatalogError::new("program", e.to_string()));
                    self.0.give(item)?;
                }
                "stores" => map.next_value_seed(items::<Store, _, _>(self.0, Kind::Store))?,
                _ => map.next_value_seed(items::<Offer, _, _>(self.0, Kind::Offer))?,
            }
        }
        for (present, name) in [(program, "program"), (stores, "stores"), (offers, "offers")] {
            if !present {
                return Err(A::Error::missing_field(name));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Store,
    Offer,
}

struct Items<'c, 'a, T, E, F>(&'c mut Ctx<'a, E, F>, Kind, std::marker::PhantomData<T>);

fn items<'c, 'a, T, E, F>(ctx: &'c mut Ctx<'a, E, F>, kind: Kind) -> Items<'c, 'a, T, E, F> {
    Items(ctx, kind, std::marker::PhantomData)
}

impl<'de, T, E, F> DeserializeSeed<'de> for Items<'_, '_, T, E, F>
where
    T: serde::Deserialize<'de> + Entity,
    F: FnMut(CatalogItem) -> Result<(), E>,
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T, E, F> Visitor<'de> for Items<'_, '_, T, E, F>
where
    T: serde::Deserialize<'de> + Entity,
    F: FnMut(CatalogItem) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of shops or offers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(mut entity) = seq.next_element::<T>()? {
            let item = entity.clean_and_check().map(|()| entity.into_item());
            match self.1 {
                Kind::Store => self.0.counts.stores += 1,
                Kind::Offer => self.0.counts.offers += 1,
            }
            self.0.give(item)?;
        }
        Ok(())
    }
}

/// A shop or an offer: cleaned, checked, handed on.
trait Entity {
    fn clean_and_check(&mut self) -> Result<(), CatalogError>;
    fn into_item(self) -> CatalogItem;
}

impl Entity for Store {
    fn clean_and_check(&mut self) -> Result<(), CatalogError> {
        self.clean()?;
        self.validate()
    }
    fn into_item(self) -> CatalogItem {
        CatalogItem::Store(self)
    }
}

impl Entity for Offer {
    fn clean_and_check(&mut self) -> Result<(), CatalogError> {
        self.clean()?;
        self.validate()
    }
    fn into_item(self) -> CatalogItem {
        CatalogItem::Offer(self)
    }
}

/// Reads a catalog document from `reader`, handing each entity to `sink` as soon as it is read
/// (the programme where it stands in the document). Stops at the first refusal: bad JSON, a
/// broken rule, or the sink's own error (a duplicate id the sink found, a storage failure).
pub fn read_catalog<R: std::io::Read, E>(
    reader: R,
    mut sink: impl FnMut(CatalogItem) -> Result<(), E>,
) -> Result<ReadCounts, ReadError<E>> {
    let failure = RefCell::new(None);
    let mut ctx = Ctx {
        sink: &mut sink,
        failure: &failure,
        counts: ReadCounts::default(),
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed =
        serde::Deserializer::deserialize_map(&mut de, Top(&mut ctx)).and_then(|()| de.end());
    let counts = ctx.counts;
    match (parsed, failure.into_inner()) {
        (_, Some(Failure::Invalid(e))) => Err(ReadError::Invalid(e)),
        (_, Some(Failure::Sink(e))) => Err(ReadError::Sink(e)),
        (Err(e), None) => Err(ReadError::Syntax(e.to_string())),
        (Ok(()), None) => Ok(counts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog_json() -> String {
        let store = r#"{"id":"st-1","name":" Café  ","address":"","postcode":"75001","city":"Paris",
            "country":"FR","latitude":48.86,"longitude":2.35,"radius_m":150,"timezone":"Europe/Paris"}"#;
        let offer = r#"{"id":"of-1","title":"Tea","description":"","kind":{"type":"free_delivery"},
            "valid_from":"2026-01-01T00:00:00Z","valid_to":"2027-01-01T00:00:00Z","channel":"online"}"#;
        format!(
            r##"{{"stores":[{store}],"offers":[{offer}],"program":{{"id":"p","name":"P","brand_color":"#112233","symbology":"qr"}}}}"##
        )
    }

    #[test]
    fn entities_reach_the_sink_one_by_one_cleaned() {
        let mut got = Vec::new();
        let counts = read_catalog::<_, ()>(catalog_json().as_bytes(), |item| {
            got.push(item);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            counts,
            ReadCounts {
                stores: 1,
                offers: 1
            }
        );
        assert!(matches!(&got[0], CatalogItem::Store(s) if s.name == "Café"));
        assert!(matches!(&got[1], CatalogItem::Offer(o) if o.id == "of-1"));
        assert!(matches!(&got[2], CatalogItem::Program(p) if p.id == "p"));
    }

    #[test]
    fn every_bad_document_is_refused_with_its_reason() {
        let ok = catalog_json();
        let run = |doc: &str| read_catalog::<_, String>(doc.as_bytes(), |_| Ok(()));
        assert!(matches!(run("[1,2]"), Err(ReadError::Syntax(_))));
        assert!(matches!(
            run(&ok[..ok.len() - 1]),
            Err(ReadError::Syntax(_))
        ));
        assert!(matches!(
            run(&format!("{ok} trailing")),
            Err(ReadError::Syntax(_))
        ));
        let twice = ok.replacen(r#""stores":"#, r#""offers":[],"stores":"#, 1);
        assert!(
            matches!(run(&twice), Err(ReadError::Syntax(e)) if e.contains("duplicate field `offers`"))
        );
        let unknown = ok.replacen(r#""stores":"#, r#""extra":1,"stores":"#, 1);
        assert!(matches!(run(&unknown), Err(ReadError::Syntax(_))));
        let no_program = r#"{"stores":[],"offers":[]}"#;
        assert!(matches!(run(no_program), Err(ReadError::Syntax(e)) if e.contains("program")));
        let invisible = ok.replacen(" Café  ", "\u{200B}", 1);
        assert!(matches!(run(&invisible), Err(ReadError::Invalid(e)) if e.field == "store.name"));
        let duplicate_field =
            ok.replacen(r#""city":"Paris""#, r#""city":"Paris","city":"Lyon""#, 1);
        assert!(matches!(run(&duplicate_field), Err(ReadError::Syntax(_))));
        let refused = read_catalog::<_, String>(ok.as_bytes(), |_| Err("full".to_owned()));
        assert!(matches!(refused, Err(ReadError::Sink(e)) if e == "full"));
    }
}
