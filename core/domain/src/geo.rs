//! Positions and distances on the WGS84 ellipsoid, and the spatial index of stores.
//!
//! Distances are geodesics on WGS84 (Karney's algorithm, `geographiclib-rs`): exact to
//! nanometres, the same on every platform. The index is an in-memory R*-tree (`rstar`) of points
//! on the unit sphere in 3D: nearest-first search there is nearest-first on the globe, with no
//! special case at the antimeridian or the poles. The sphere's order differs from the ellipsoid's
//! by less than 0.34 %, which the searches allow for before they compute exact distances.

use geographiclib_rs::{Geodesic, InverseGeodesic};
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::{Deserialize, Serialize};

use crate::catalog::CatalogError;

/// A point on Earth, degrees (WGS84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
}

impl Position {
    pub fn validate(&self) -> Result<(), CatalogError> {
        if !self.latitude.is_finite() || !(-90.0..=90.0).contains(&self.latitude) {
            return Err(CatalogError::new("position.latitude", "must be -90 to 90"));
        }
        if !self.longitude.is_finite() || !(-180.0..=180.0).contains(&self.longitude) {
            return Err(CatalogError::new(
                "position.longitude",
                "must be -180 to 180",
            ));
        }
        Ok(())
    }

    /// The point on the unit sphere (geocentric direction of the geodetic coordinates; good
    /// enough for ordering, never used for a distance that is reported).
    pub fn unit_vector(&self) -> [f64; 3] {
        let (lat, lon) = (self.latitude.to_radians(), self.longitude.to_radians());
        [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
    }
}

/// The geodesic distance in metres between two points on WGS84.
pub fn distance_m(a: Position, b: Position) -> f64 {
    thread_local! {
        static WGS84: Geodesic = Geodesic::wgs84();
    }
    WGS84.with(|g| {
        let s12: f64 = g.inverse(a.latitude, a.longitude, b.latitude, b.longitude);
        s12
    })
}

/// Mean Earth radius (IUGG), metres: the unit sphere's scale.
pub const MEAN_RADIUS_M: f64 = 6_371_008.8;
/// The ellipsoid's distance is at least this factor of the mean sphere's: the smallest ratio is
/// north-south at the equator, where the meridian's radius of curvature is a(1 - e²) =
/// 6,335,439 m against the mean 6,371,009 m (0.99442). It was 0.995 until a test of the bounds
/// found a bound 36 m above the true distance at 131 km near the equator.
const SPHERE_SLACK: f64 = 0.994;

/// Spherical distance in metres for a squared chord.
fn sphere_m(chord2: f64) -> f64 {
    2.0 * (chord2.sqrt() / 2.0).min(1.0).asin() * MEAN_RADIUS_M
}

/// How far (metres) a distance from single-precision unit vectors may be below the true one: each
/// coordinate is within 2^-24 of the double, so the chord within ~2.1e-7 of the Earth's radius
/// (1.3 m); 2 m keeps the bounds below the truth.
const F32_SLACK_M: f64 = 2.0;

/// A node holds up to 16 entries (rstar's default is 6): fewer, fuller nodes for a static index.
#[derive(Debug)]
struct Params;

impl rstar::RTreeParams for Params {
    const MIN_SIZE: usize = 6;
    const MAX_SIZE: usize = 16;
    const REINSERTION_COUNT: usize = 4;
    type DefaultInsertionStrategy = rstar::RStarInsertionStrategy;
}

/// Points with an index into the caller's table, as single-precision unit vectors (16 bytes a
/// point; the exact distance of what is found is the caller's, from its positions).
#[derive(Debug)]
pub struct PointIndex {
    tree: RTree<GeomWithData<[f32; 3], u32>, Params>,
}

impl Default for PointIndex {
    fn default() -> Self {
        PointIndex {
            tree: RTree::new_with_params(),
        }
    }
}

fn unit_f32(p: Position) -> [f32; 3] {
    p.unit_vector().map(|c| c as f32)
}

impl PointIndex {
    pub fn build(points: impl IntoIterator<Item = (Position, u32)>) -> Self {
        PointIndex {
            tree: RTree::bulk_load_with_params(
                points
                    .into_iter()
                    .map(|(p, i)| GeomWithData::new(unit_f32(p), i))
                    .collect(),
            ),
        }
    }

    pub fn len(&self) -> usize {
        self.tree.size()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }

    /// Points nearest first, each with a lower bound (metres) of its geodesic distance from
    /// `from` that also holds for every point after it.
    pub fn nearest(&self, from: Position) -> impl Iterator<Item = (u32, f64)> + '_ {
        let q = unit_f32(from);
        self.tree
            .nearest_neighbor_iter_with_distance_2(q)
            .map(|(p, d2)| {
                let lower = sphere_m(f64::from(d2)) * SPHERE_SLACK - F32_SLACK_M;
                (p.data, lower.max(0.0))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(latitude: f64, longitude: f64) -> Position {
        Position {
            latitude,
            longitude,
        }
    }

    /// The bounds `nearest` gives (from single-precision vectors) never exceed the true
    /// distance of the point or of any point after it: stores a few metres apart, and far.
    #[test]
    fn nearest_bounds_stay_below_the_true_distances() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut unit = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for (spread, centre) in [
            (0.0005, p(48.8566, 2.3522)),
            (0.2, p(-33.9, 151.2)),
            (60.0, p(0.0, 179.9)),
        ] {
            let pts: Vec<Position> = (0..500)
                .map(|_| {
                    let lat = (centre.latitude + (unit() - 0.5) * spread).clamp(-90.0, 90.0);
                    let lon = (centre.longitude + (unit() - 0.5) * spread + 540.0) % 360.0 - 180.0;
                    p(lat, lon)
                })
                .collect();
            let idx = PointIndex::build(pts.iter().enumerate().map(|(i, q)| (*q, i as u32)));
            let found: Vec<(u32, f64)> = idx.nearest(centre).collect();
            assert_eq!(found.len(), pts.len());
            let mut floor = 0.0f64;
            for (k, &(i, lower)) in found.iter().enumerate() {
                assert!(lower >= floor, "bounds go down at {k}");
                floor = lower;
                let nearest_after = found[k..]
                    .iter()
                    .map(|&(j, _)| distance_m(centre, pts[j as usize]))
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    lower <= nearest_after,
                    "bound {lower} m above a true distance {nearest_after} m ({spread}° spread)"
                );
                let _ = i;
            }
        }
    }

    #[test]
    fn known_geodesics() {
        // Paris (Notre-Dame) to Lyon (Bellecour): 391.5 km on WGS84.
        let d = distance_m(p(48.85293, 2.35005), p(45.75781, 4.83201));
        assert!((d - 391_500.0).abs() < 1_000.0, "{d}");
        // A quarter meridian: 10,001,965.729 m.
        let q = distance_m(p(0.0, 0.0), p(90.0, 0.0));
        assert!((q - 10_001_965.729).abs() < 0.001, "{q}");
        assert_eq!(distance_m(p(10.0, 20.0), p(10.0, 20.0)), 0.0);
    }

    #[test]
    fn the_index_is_nearest_first_across_the_antimeridian_and_the_poles() {
        let pts = [
            p(0.0, 179.999),
            p(0.0, -179.999),
            p(0.0, 170.0),
            p(89.999, 0.0),
            p(89.999, 180.0),
            p(-45.0, 0.0),
        ];
        let idx = PointIndex::build(pts.iter().enumerate().map(|(i, q)| (*q, i as u32)));
        let order: Vec<u32> = idx.nearest(p(0.0, 180.0)).map(|(i, _)| i).take(3).collect();
        assert_eq!(
            &order[..2]
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            &[0, 1].into()
        );
        assert_eq!(order[2], 2);
        let near_pole: Vec<u32> = idx
            .nearest(p(90.0, 0.0))
            .take_while(|&(_, lower)| lower <= 1_000.0)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(near_pole.len(), 2, "both sides of the pole");
        for (i, lower) in idx.nearest(p(0.0, 180.0)) {
            assert!(lower <= distance_m(p(0.0, 180.0), pts[i as usize]) + 1e-6);
        }
    }

    #[test]
    fn positions_are_validated() {
        assert!(p(91.0, 0.0).validate().is_err());
        assert!(p(0.0, -180.1).validate().is_err());
        assert!(p(f64::NAN, 0.0).validate().is_err());
        p(-90.0, 180.0).validate().unwrap();
    }
}
