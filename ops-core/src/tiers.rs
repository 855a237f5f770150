//! Start-up order from dependencies, in one place: tiers in which every member comes after
//! everything it depends on (databases and caches, then the applications using them, then the
//! proxies in front). [`crate::runbooks::RecoveryOrder::from_dependencies`] builds
//! `complete_service_recovery`'s order with it, `ops-compose`'s `start_project` starts a
//! project by it, and the `opsbook` system file checks its `depends_on` with it.

use std::collections::{BTreeMap, BTreeSet};

/// `deps` in tiers, first to start first: tier 0 holds what depends on nothing, each later
/// tier what depends only on earlier ones (Kahn's algorithm by levels). Members of a tier are
/// in key order. A dependency that is not itself a key of `deps` (a service outside the
/// project, already running) is ignored.
///
/// # Errors
/// [`Cycle`] when some members can never start because they depend on each other (directly
/// or through others); it holds the tiers that could be placed and the members left over.
///
/// # Examples
/// ```
/// use std::collections::{BTreeMap, BTreeSet};
/// use ops_core::tiers::dependency_tiers;
/// let deps = BTreeMap::from([
///     ("proxy", BTreeSet::from(["api"])),
///     ("api", BTreeSet::from(["db", "cache", "smtp"])), // smtp: not ours, ignored
///     ("db", BTreeSet::new()),
///     ("cache", BTreeSet::new()),
/// ]);
/// assert_eq!(dependency_tiers(&deps)?, [vec!["cache", "db"], vec!["api"], vec!["proxy"]]);
///
/// let cycle = BTreeMap::from([("a", BTreeSet::from(["b"])), ("b", BTreeSet::from(["a"])), ("c", BTreeSet::new())]);
/// let err = dependency_tiers(&cycle).unwrap_err();
/// assert_eq!(err.placed, [vec!["c"]]);
/// assert_eq!(err.stuck, ["a", "b"]);
/// # Ok::<(), ops_core::tiers::Cycle<&str>>(())
/// ```
pub fn dependency_tiers<K: Ord + Clone>(
    deps: &BTreeMap<K, BTreeSet<K>>,
) -> Result<Vec<Vec<K>>, Cycle<K>> {
    let mut waiting: BTreeMap<&K, BTreeSet<&K>> = deps
        .iter()
        .map(|(k, d)| (k, d.iter().filter(|x| deps.contains_key(*x)).collect()))
        .collect();
    let mut placed: Vec<Vec<K>> = Vec::new();
    while !waiting.is_empty() {
        let ready: Vec<&K> = waiting
            .iter()
            .filter(|(_, d)| d.is_empty())
            .map(|(k, _)| *k)
            .collect();
        if ready.is_empty() {
            return Err(Cycle {
                placed,
                stuck: waiting.keys().map(|k| (*k).clone()).collect(),
            });
        }
        for k in &ready {
            waiting.remove(k);
        }
        for d in waiting.values_mut() {
            for k in &ready {
                d.remove(k);
            }
        }
        placed.push(ready.into_iter().cloned().collect());
    }
    Ok(placed)
}

/// Dependencies that form a cycle: what [`dependency_tiers`] could place, and what not.
///
/// # Examples
/// ```
/// use std::collections::{BTreeMap, BTreeSet};
/// let deps = BTreeMap::from([(1, BTreeSet::from([1]))]);
/// let err = ops_core::tiers::dependency_tiers(&deps).unwrap_err();
/// assert_eq!(err.stuck, [1]);
/// assert!(err.to_string().contains("cycle"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle<K> {
    /// The tiers placed before the cycle stopped the order.
    pub placed: Vec<Vec<K>>,
    /// The members in a cycle or depending on one, in key order.
    pub stuck: Vec<K>,
}

impl<K: std::fmt::Debug> std::fmt::Display for Cycle<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dependencies form a cycle: {:?} can never start",
            self.stuck
        )
    }
}

impl<K: std::fmt::Debug> std::error::Error for Cycle<K> {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Every member is placed once, after every dependency it has among the keys; or,
        /// on a cycle, the stuck ones really cannot start.
        #[test]
        fn every_member_comes_after_its_dependencies(
            edges in proptest::collection::vec((0u8..12, 0u8..12), 0..30),
            forward_only in any::<bool>(),
        ) {
            let mut deps: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::new();
            for (a, b) in edges {
                // Forward-only edges (to smaller numbers) can never form a cycle.
                if forward_only && b >= a {
                    deps.entry(a).or_default();
                    continue;
                }
                deps.entry(a).or_default().insert(b);
            }
            match dependency_tiers(&deps) {
                Ok(tiers) => {
                    let tier_of: BTreeMap<u8, usize> = tiers
                        .iter()
                        .enumerate()
                        .flat_map(|(n, t)| t.iter().map(move |k| (*k, n)))
                        .collect();
                    prop_assert_eq!(tier_of.len(), deps.len());
                    prop_assert_eq!(tiers.iter().map(Vec::len).sum::<usize>(), deps.len());
                    for (k, d) in &deps {
                        for x in d.iter().filter(|x| deps.contains_key(*x)) {
                            prop_assert!(tier_of[x] < tier_of[k], "{} before {}", x, k);
                        }
                    }
                    for t in &tiers {
                        prop_assert!(!t.is_empty());
                    }
                }
                Err(cycle) => {
                    prop_assert!(!forward_only, "forward-only edges have no cycle");
                    prop_assert!(!cycle.stuck.is_empty());
                    let placed: BTreeSet<u8> = cycle.placed.iter().flatten().copied().collect();
                    // Each stuck member waits for another stuck member.
                    for k in &cycle.stuck {
                        prop_assert!(!placed.contains(k));
                        prop_assert!(deps[k].iter().any(|x| cycle.stuck.contains(x)));
                    }
                }
            }
        }
    }
}
