//! Stable target groups: a tenant's targets split by a fixed hash of their id into `2^level`
//! groups. The scheduler builds each job from one group, and the cloud history store keys its
//! blocks by group, so reading one target's raw history reads its group, never the whole tenant.
//!
//! The hash is written out (FNV-1a, 64 bit) because groups name stored items: it must give the
//! same group on every build and platform, unlike std's randomly keyed hasher. Levels refine:
//! the group of a target at level `k + 1` lies inside its group at level `k`.

use serde::{Deserialize, Serialize};

use crate::ids::TargetId;

/// Targets per group the scheduler aims at: a tenant's level is the smallest with at most this
/// many targets per group on average, so a 60 s target's job (one 10 s slot of a group) holds
/// about 25 to 50 targets.
pub const GROUP_TARGETS: usize = 300;
/// The finest level: 65,536 groups, a handful of targets each even at 1,000,000 targets.
pub const MAX_LEVEL: u8 = 16;

/// One group of targets at one level: the targets whose hash has `index` as its top `level`
/// bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Group {
    pub level: u8,
    pub index: u32,
}

impl Group {
    /// The group of `target` at `level` (capped at [`MAX_LEVEL`]).
    pub fn of(target: &TargetId, level: u8) -> Group {
        let level = level.min(MAX_LEVEL);
        let index = if level == 0 {
            0
        } else {
            // At most 16 bits, so the cast keeps every bit.
            (stable_hash(target.as_str().as_bytes()) >> (64 - u32::from(level))) as u32
        };
        Group { level, index }
    }

    /// The indices at [`MAX_LEVEL`] of the groups inside this one: levels refine, so they are
    /// one contiguous range.
    pub fn finest_range(self) -> std::ops::Range<u32> {
        let shift = u32::from(MAX_LEVEL - self.level.min(MAX_LEVEL));
        (self.index << shift)..((self.index + 1) << shift)
    }

    /// Every group of `level`, in index order.
    pub fn all(level: u8) -> impl Iterator<Item = Group> {
        let level = level.min(MAX_LEVEL);
        (0..1u32 << level).map(move |index| Group { level, index })
    }
}

/// The level for a tenant of `targets` targets: the smallest with at most [`GROUP_TARGETS`]
/// targets per group on average, at most [`MAX_LEVEL`].
pub fn level_for(targets: usize) -> u8 {
    let mut level = 0;
    while level < MAX_LEVEL && targets > GROUP_TARGETS << level {
        level += 1;
    }
    level
}

/// FNV-1a, 64 bit, finished with a multiply-xorshift so the top bits (which pick the group)
/// depend on every byte: plain FNV-1a mixes its last bytes into the low bits only.
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TargetId {
        TargetId::parse(s).expect("valid id")
    }

    #[test]
    fn groups_are_fixed_across_builds() {
        // Stored items are named after these: a change here orphans written history.
        assert_eq!(stable_hash(b""), 17_058_014_651_485_797_458);
        assert_eq!(Group::of(&id("api"), 0), Group { level: 0, index: 0 });
        assert_eq!(
            Group::of(&id("api"), 6),
            Group {
                level: 6,
                index: 62
            }
        );
        assert_eq!(
            Group::of(&id("web"), 16),
            Group {
                level: 16,
                index: 41_943
            }
        );
        assert_eq!(Group::of(&id("web"), 40).level, MAX_LEVEL);
    }

    #[test]
    fn levels_refine() {
        for i in 0..2_000 {
            let t = id(&format!("t{i}"));
            for level in 0..MAX_LEVEL {
                let (outer, inner) = (Group::of(&t, level), Group::of(&t, level + 1));
                assert_eq!(inner.index >> 1, outer.index, "{t} at level {level}");
            }
        }
    }

    #[test]
    fn a_group_holds_the_finest_groups_of_its_range() {
        for i in 0..500 {
            let t = id(&format!("t{i}"));
            let finest = Group::of(&t, MAX_LEVEL).index;
            for level in 0..=MAX_LEVEL {
                assert!(Group::of(&t, level).finest_range().contains(&finest));
            }
        }
        assert_eq!(Group { level: 0, index: 0 }.finest_range(), 0..65_536);
    }

    #[test]
    fn levels_follow_tenant_size() {
        assert_eq!(level_for(0), 0);
        assert_eq!(level_for(GROUP_TARGETS), 0);
        assert_eq!(level_for(GROUP_TARGETS + 1), 1);
        assert_eq!(level_for(5_001), 5);
        assert_eq!(level_for(10_000), 6);
        assert_eq!(level_for(usize::MAX), MAX_LEVEL);
        assert_eq!(Group::all(3).count(), 8);
    }

    #[test]
    fn targets_spread_evenly() {
        let level = level_for(10_000);
        let mut sizes = vec![0usize; 1 << level];
        for i in 0..10_000 {
            sizes[Group::of(&id(&format!("target-{i}")), level).index as usize] += 1;
        }
        let (min, max) = (sizes.iter().min(), sizes.iter().max());
        assert!(min >= Some(&100) && max <= Some(&220), "{min:?}..{max:?}");
    }
}
