//! Positions and distances on the WGS84 ellipsoid, and the spatial index of stores.
//!
//! Distances are geodesics on WGS84 (Karney's algorithm, `geographiclib-rs`): exact to
//! nanometres, the same on every platform. The index is a static packed tree of points on the unit
//! sphere in 3D (`PointIndex`): nearest-first search there is nearest-first on the globe, with no
//! special case at the antimeridian or the poles. The sphere's order differs from the ellipsoid's
//! by less than 0.34 %, which the searches allow for before they compute exact distances.

use geographiclib_rs::{Geodesic, InverseGeodesic};
use serde::{Deserialize, Serialize};

use crate::catalog::CatalogError;

/// A point on Earth, degrees (WGS84).
// Plain data (`Pod`, `repr(C)`): the phone's offer index keeps stores' positions in a mapped file.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, bytemuck::Pod, bytemuck::Zeroable,
)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[repr(C)]
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

/// Points in a node of the index, and nodes in a node above.
const FANOUT: usize = 16;

/// A box in the unit sphere's space (single precision, like the points it bounds).
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Bounds {
    min: [f32; 3],
    max: [f32; 3],
}

/// A point of the index: its unit vector and the caller's index.
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct PointEntry {
    v: [f32; 3],
    data: u32,
}

impl Bounds {
    const EMPTY: Bounds = Bounds {
        min: [f32::INFINITY; 3],
        max: [f32::NEG_INFINITY; 3],
    };

    fn add_point(&mut self, p: [f32; 3]) {
        self.add(&Bounds { min: p, max: p });
    }

    fn add(&mut self, b: &Bounds) {
        for k in 0..3 {
            self.min[k] = self.min[k].min(b.min[k]);
            self.max[k] = self.max[k].max(b.max[k]);
        }
    }

    /// Squared distance from `q` to the nearest point of the box (0 inside), in double precision
    /// from the single-precision corners: never above a point's own `dist2`.
    fn dist2(&self, q: [f64; 3]) -> f64 {
        q.iter()
            .zip(self.min.iter().zip(&self.max))
            .map(|(&q, (&min, &max))| {
                let d = (f64::from(min) - q).max(q - f64::from(max)).max(0.0);
                d * d
            })
            .sum()
    }
}

fn dist2(p: [f32; 3], q: [f64; 3]) -> f64 {
    (0..3)
        .map(|k| {
            let d = f64::from(p[k]) - q[k];
            d * d
        })
        .sum()
}

/// Interleaves the low 21 bits of `v` with two zero bits between each.
fn spread21(v: u64) -> u64 {
    let mut x = v & 0x1f_ffff;
    x = (x | x << 32) & 0x1f_0000_0000_ffff;
    x = (x | x << 16) & 0x1f_0000_ff00_00ff;
    x = (x | x << 8) & 0x100f_00f0_0f00_f00f;
    x = (x | x << 4) & 0x10c3_0c30_c30c_30c3;
    x = (x | x << 2) & 0x1249_2492_4924_9249;
    x
}

/// The point's place on a 3D Z-order curve: nearby points mostly get nearby codes, so runs of
/// consecutive points make small boxes.
fn z_order(p: [f32; 3]) -> u64 {
    let cell = |c: f32| (((f64::from(c) + 1.0) / 2.0).clamp(0.0, 1.0) * 2_097_151.0) as u64;
    spread21(cell(p[0])) | spread21(cell(p[1])) << 1 | spread21(cell(p[2])) << 2
}

/// Points with an index into the caller's table, as single-precision unit vectors, in a static
/// packed tree: the points sorted along a Z-order curve, 16 to a leaf, each level a box around 16
/// of the level below. 16 bytes a point plus 24 bytes a box (one box per 16 points, and one per 16
/// boxes above): about 17.6 bytes a point, against 56 in `rstar`'s nodes before (docs/figures.md).
/// The exact distance of what is found is the caller's, from its positions. Three flat arrays of
/// plain data ([`PointIndex::parts`]): a caller may keep them anywhere (the phone maps them from a
/// file) and search them with [`PointsView`].
#[derive(Debug)]
pub struct PointIndex {
    /// In tree order: leaf `k` holds `points[k * 16 ..]`, up to 16.
    points: Vec<PointEntry>,
    /// Every level's boxes, leaves' first, the root's (one box) last.
    boxes: Vec<Bounds>,
    /// Where each level starts in `boxes`, and one past the end.
    levels: Vec<u32>,
}

fn unit_f32(p: Position) -> [f32; 3] {
    p.unit_vector().map(|c| c as f32)
}

impl Default for PointIndex {
    fn default() -> Self {
        PointIndex::build([])
    }
}

impl PointIndex {
    pub fn build(points: impl IntoIterator<Item = (Position, u32)>) -> Self {
        let mut points: Vec<(u64, PointEntry)> = points
            .into_iter()
            .map(|(p, data)| {
                let v = unit_f32(p);
                (z_order(v), PointEntry { v, data })
            })
            .collect();
        points.sort_unstable_by_key(|&(z, e)| (z, e.data));
        let points: Vec<PointEntry> = points.into_iter().map(|(_, e)| e).collect();
        let mut boxes = Vec::with_capacity(points.len() / (FANOUT - 1) + 1);
        let mut levels = vec![0u32];
        for chunk in points.chunks(FANOUT) {
            let mut b = Bounds::EMPTY;
            for e in chunk {
                b.add_point(e.v);
            }
            boxes.push(b);
        }
        levels.push(boxes.len() as u32);
        while levels[levels.len() - 1] - levels[levels.len() - 2] > 1 {
            let (start, end) = (
                levels[levels.len() - 2] as usize,
                levels[levels.len() - 1] as usize,
            );
            for first in (start..end).step_by(FANOUT) {
                let mut b = Bounds::EMPTY;
                for child in &boxes[first..(first + FANOUT).min(end)] {
                    b.add(child);
                }
                boxes.push(b);
            }
            levels.push(boxes.len() as u32);
        }
        boxes.shrink_to_fit();
        PointIndex {
            points,
            boxes,
            levels,
        }
    }

    pub fn len(&self) -> usize {
        self.view().len()
    }

    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    /// Heap bytes the index holds.
    pub fn heap_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<PointEntry>()
            + self.boxes.capacity() * std::mem::size_of::<Bounds>()
            + self.levels.capacity() * std::mem::size_of::<u32>()
    }

    /// The points, the boxes and the levels, for [`PointsView::new`].
    pub fn parts(&self) -> (&[PointEntry], &[Bounds], &[u32]) {
        (&self.points, &self.boxes, &self.levels)
    }

    pub fn view(&self) -> PointsView<'_> {
        PointsView {
            points: &self.points,
            boxes: &self.boxes,
            levels: &self.levels,
        }
    }

    /// See [`PointsView::nearest`].
    pub fn nearest(&self, from: Position) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.view().nearest(from)
    }
}

/// A [`PointIndex`]'s arrays, wherever they are kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct PointsView<'a> {
    points: &'a [PointEntry],
    boxes: &'a [Bounds],
    levels: &'a [u32],
}

impl<'a> PointsView<'a> {
    /// The arrays of a [`PointIndex`] (`parts`), kept elsewhere. `None` if they do not fit
    /// together (a damaged copy): the levels must cover the boxes, and the leaves the points.
    pub fn new(points: &'a [PointEntry], boxes: &'a [Bounds], levels: &'a [u32]) -> Option<Self> {
        // The shape `build` makes: level 0 a box per 16 points, each level above a box per 16
        // below, up to one root (nothing at all when there is no point).
        let mut expected = vec![0u32];
        let mut count = points.len().div_ceil(FANOUT);
        let mut end = 0usize;
        loop {
            end += count;
            expected.push(end as u32);
            if count <= 1 {
                break;
            }
            count = count.div_ceil(FANOUT);
        }
        let fits = levels == expected.as_slice() && end == boxes.len();
        fits.then_some(PointsView {
            points,
            boxes,
            levels,
        })
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Points nearest first, each with a lower bound (metres) of its geodesic distance from
    /// `from` that also holds for every point after it.
    pub fn nearest(self, from: Position) -> impl Iterator<Item = (u32, f64)> + 'a {
        let q = unit_f32(from).map(f64::from);
        let mut queue = std::collections::BinaryHeap::new();
        if !self.points.is_empty() {
            let root_level = self.levels.len() - 2;
            let root = self.levels[root_level] as usize;
            queue.push(Visit {
                d2: self.boxes[root].dist2(q),
                what: Entry::Box {
                    level: root_level as u8,
                    index: root as u32,
                },
            });
        }
        std::iter::from_fn(move || {
            while let Some(Visit { d2, what }) = queue.pop() {
                match what {
                    Entry::Point(i) => {
                        let lower = sphere_m(d2) * SPHERE_SLACK - F32_SLACK_M;
                        return Some((self.points[i as usize].data, lower.max(0.0)));
                    }
                    Entry::Box { level, index } => {
                        // This box's place in its level is its first child's in the level below.
                        let first =
                            (index as usize - self.levels[level as usize] as usize) * FANOUT;
                        if level == 0 {
                            let end = (first + FANOUT).min(self.points.len());
                            for i in first..end {
                                queue.push(Visit {
                                    d2: dist2(self.points[i].v, q),
                                    what: Entry::Point(i as u32),
                                });
                            }
                        } else {
                            let below = level as usize - 1;
                            let (start, end) =
                                (self.levels[below] as usize, self.levels[below + 1] as usize);
                            for child in start + first..(start + first + FANOUT).min(end) {
                                queue.push(Visit {
                                    d2: self.boxes[child].dist2(q),
                                    what: Entry::Box {
                                        level: below as u8,
                                        index: child as u32,
                                    },
                                });
                            }
                        }
                    }
                }
            }
            None
        })
    }
}

/// A box or a point waiting in the search, closest first.
#[derive(Debug, Clone, Copy)]
struct Visit {
    d2: f64,
    what: Entry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A point before a box at the same distance: what is returned earlier stops a search sooner.
    Point(u32),
    Box {
        level: u8,
        index: u32,
    },
}

impl PartialEq for Visit {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Visit {}

impl PartialOrd for Visit {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Visit {
    /// Reversed, for the max-heap: the smallest distance is the greatest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let rank = |e: &Entry| match e {
            Entry::Point(i) => (0u8, *i),
            Entry::Box { index, .. } => (1u8, *index),
        };
        other
            .d2
            .total_cmp(&self.d2)
            .then_with(|| rank(&other.what).cmp(&rank(&self.what)))
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

    /// The packed tree gives every point, nearest first, exactly as sorting them all would; and
    /// its boxes never hide a nearer point (a query inside, outside and far from the points).
    #[test]
    fn the_packed_tree_is_nearest_first_like_a_full_sort() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut unit = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in [0usize, 1, 15, 16, 17, 256, 257, 5_000] {
            let pts: Vec<Position> = (0..n)
                .map(|_| p(44.0 + unit() * 6.0, -1.0 + unit() * 8.0))
                .collect();
            let idx = PointIndex::build(pts.iter().enumerate().map(|(i, q)| (*q, i as u32)));
            assert_eq!(idx.len(), n);
            for from in [p(47.0, 3.0), p(44.0, -1.0), p(-33.9, 151.2), p(50.5, 7.5)] {
                let q = unit_f32(from).map(f64::from);
                let found: Vec<u32> = idx.nearest(from).map(|(i, _)| i).collect();
                assert_eq!(found.len(), n);
                let key = |i: u32| dist2(unit_f32(pts[i as usize]), q);
                let mut sorted: Vec<u32> = (0..n as u32).collect();
                sorted.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
                let by_distance = |v: &[u32]| v.iter().map(|&i| key(i)).collect::<Vec<_>>();
                assert_eq!(by_distance(&found), by_distance(&sorted), "{n} points");
                let mut all = found.clone();
                all.sort_unstable();
                assert!(all.iter().copied().eq(0..n as u32), "each point once");
            }
        }
        // The arrays, kept elsewhere, search the same; a damaged copy is refused.
        let idx = PointIndex::build((0..1000u32).map(|i| (p(45.0, f64::from(i) * 1e-3), i)));
        let (points, boxes, levels) = idx.parts();
        let view = PointsView::new(points, boxes, levels).unwrap();
        let from = p(45.001, 0.5);
        assert!(view.nearest(from).eq(idx.nearest(from)));
        assert!(PointsView::new(&points[16..], boxes, levels).is_none());
        assert!(PointsView::new(points, &boxes[1..], levels).is_none());
        assert!(PointsView::new(points, boxes, &levels[1..]).is_none());
        let empty = PointIndex::build([]);
        let (points, boxes, levels) = empty.parts();
        assert_eq!(
            PointsView::new(points, boxes, levels)
                .unwrap()
                .nearest(from)
                .count(),
            0
        );
        // 17.6 bytes a point: 16 for the point, a 24-byte box per 16 points and per 16 boxes.
        let idx = PointIndex::build((0..100_000u32).map(|i| (p(45.0, f64::from(i) * 1e-4), i)));
        assert!(
            idx.heap_bytes() <= 100_000 * 18,
            "{} bytes",
            idx.heap_bytes()
        );
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
