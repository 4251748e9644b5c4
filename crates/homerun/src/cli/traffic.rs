//! The traffic split `services update-traffic` asks for, computed from the current one as
//! gcloud does: named revisions get their percent, what is left stays on the revisions
//! not named (in proportion to what they had), tags are kept unless changed.

use anyhow::bail;

use api::{TrafficTarget, TrafficTargetAllocationType};

/// What a traffic share or tag points at.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Latest,
    Revision(String),
}

impl Key {
    /// `LATEST` is the latest ready revision, anything else a revision id.
    fn parse(name: &str) -> Key {
        if name == "LATEST" {
            Key::Latest
        } else {
            Key::Revision(name.to_string())
        }
    }

    fn of(t: &TrafficTarget) -> Key {
        if t.kind == TrafficTargetAllocationType::Revision
            || (t.kind == TrafficTargetAllocationType::Unspecified && !t.revision.is_empty())
        {
            Key::Revision(t.revision.clone())
        } else {
            Key::Latest
        }
    }

    fn target(&self, percent: i32) -> TrafficTarget {
        match self {
            Key::Latest => TrafficTarget::latest(percent),
            Key::Revision(r) => TrafficTarget::revision(r.clone(), percent),
        }
    }

    fn describe(&self) -> &str {
        match self {
            Key::Latest => "LATEST",
            Key::Revision(r) => r,
        }
    }
}

/// The changes asked for.
#[derive(Clone, Debug, Default)]
pub struct TrafficChange {
    /// Everything to the latest ready revision.
    pub to_latest: bool,
    /// `REVISION=PERCENT` (`LATEST` allowed).
    pub to_revisions: Vec<(String, i32)>,
    /// `TAG=PERCENT`: to the revision the tag names.
    pub to_tags: Vec<(String, i32)>,
    /// `TAG=REVISION`: tags set or moved.
    pub update_tags: Vec<(String, String)>,
    pub remove_tags: Vec<String>,
    pub clear_tags: bool,
}

/// `current` changed as `change` says.
pub fn updated_traffic(
    current: &[TrafficTarget],
    change: &TrafficChange,
) -> anyhow::Result<Vec<TrafficTarget>> {
    let mut percents: Vec<(Key, i32)> = Vec::new();
    let mut tags: Vec<(String, Key)> = Vec::new();
    for t in current {
        let key = Key::of(t);
        if t.percent > 0 {
            match percents.iter_mut().find(|(k, _)| *k == key) {
                Some((_, p)) => *p += t.percent,
                None => percents.push((key.clone(), t.percent)),
            }
        }
        if !t.tag.is_empty() {
            tags.push((t.tag.clone(), key));
        }
    }
    if current.is_empty() {
        percents.push((Key::Latest, 100));
    }

    if change.clear_tags {
        tags.clear();
    }
    tags.retain(|(tag, _)| !change.remove_tags.contains(tag));
    for (tag, revision) in &change.update_tags {
        tags.retain(|(t, _)| t != tag);
        tags.push((tag.clone(), Key::parse(revision)));
    }

    if change.to_latest {
        percents = vec![(Key::Latest, 100)];
    } else {
        let mut given: Vec<(Key, i32)> = Vec::new();
        let by_tag =
            change
                .to_tags
                .iter()
                .map(|(tag, percent)| match tags.iter().find(|(t, _)| t == tag) {
                    Some((_, key)) => Ok((key.clone(), *percent)),
                    None => bail!("--to-tags: no traffic target has the tag [{tag}]"),
                });
        let by_revision = change
            .to_revisions
            .iter()
            .map(|(r, p)| Ok((Key::parse(r), *p)));
        for item in by_revision.chain(by_tag) {
            let (key, percent) = item?;
            if !(0..=100).contains(&percent) {
                bail!("{}: a percent is 0 to 100, not {percent}", key.describe());
            }
            if given.iter().any(|(k, _)| *k == key) {
                bail!("{} is given more than once", key.describe());
            }
            given.push((key, percent));
        }
        if !given.is_empty() {
            percents = split_with(&percents, &given)?;
        }
    }

    let mut out: Vec<TrafficTarget> = percents.iter().map(|(k, p)| k.target(*p)).collect();
    for (tag, key) in tags {
        // A tag rides on its revision's share when that has none yet, else on its own.
        match out
            .iter_mut()
            .find(|t| t.tag.is_empty() && t.percent > 0 && Key::of(t) == key)
        {
            Some(t) => t.tag = tag,
            None => out.push(key.target(0).with_tag(tag)),
        }
    }
    Ok(out)
}

/// `given` shares, and what they leave shared among the other current ones in
/// proportion (largest remainders get the leftover points).
fn split_with(current: &[(Key, i32)], given: &[(Key, i32)]) -> anyhow::Result<Vec<(Key, i32)>> {
    let assigned: i32 = given.iter().map(|(_, p)| p).sum();
    if assigned > 100 {
        bail!("the percentages add up to {assigned}, more than 100");
    }
    let others: Vec<&(Key, i32)> = current
        .iter()
        .filter(|(k, p)| *p > 0 && !given.iter().any(|(g, _)| g == k))
        .collect();
    let left = 100 - assigned;
    let others_total: i64 = others.iter().map(|(_, p)| i64::from(*p)).sum();
    if left > 0 && others_total == 0 {
        bail!("the percentages add up to {assigned}, not 100, and no other revision has traffic to keep the rest");
    }
    let mut out: Vec<(Key, i32)> = given.iter().filter(|(_, p)| *p > 0).cloned().collect();
    if left == 0 {
        return Ok(out);
    }
    let mut shares: Vec<(Key, i32, i64)> = others
        .iter()
        .map(|(k, p)| {
            let exact = i64::from(left) * i64::from(*p);
            (
                k.clone(),
                (exact / others_total) as i32,
                exact % others_total,
            )
        })
        .collect();
    let mut leftover = left - shares.iter().map(|s| s.1).sum::<i32>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].2.cmp(&shares[a].2).then(a.cmp(&b)));
    for i in order {
        if leftover == 0 {
            break;
        }
        shares[i].1 += 1;
        leftover -= 1;
    }
    out.extend(
        shares
            .into_iter()
            .filter(|(_, p, _)| *p > 0)
            .map(|(k, p, _)| (k, p)),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(r: &str, p: i32) -> TrafficTarget {
        TrafficTarget::revision(r, p)
    }

    #[test]
    fn named_revisions_get_their_percent_and_the_rest_stays() {
        let current = [rev("a", 50), rev("b", 25), rev("c", 25)];
        let change = TrafficChange {
            to_revisions: vec![("a".into(), 70)],
            ..Default::default()
        };
        assert_eq!(
            updated_traffic(&current, &change).unwrap(),
            [rev("a", 70), rev("b", 15), rev("c", 15)]
        );
        let change = TrafficChange {
            to_revisions: vec![("a".into(), 50), ("LATEST".into(), 50)],
            ..Default::default()
        };
        assert_eq!(
            updated_traffic(&current, &change).unwrap(),
            [rev("a", 50), TrafficTarget::latest(50)]
        );
    }

    #[test]
    fn leftover_points_go_to_the_largest_remainders() {
        let current = [rev("a", 1), rev("b", 1), rev("c", 1), rev("d", 97)];
        let change = TrafficChange {
            to_revisions: vec![("d".into(), 0)],
            ..Default::default()
        };
        assert_eq!(
            updated_traffic(&current, &change).unwrap(),
            [rev("a", 34), rev("b", 33), rev("c", 33)]
        );
    }

    #[test]
    fn impossible_splits_are_refused() {
        let current = [TrafficTarget::latest(100)];
        for to in [
            vec![("a", 60), ("b", 50)],
            vec![("LATEST", 40)],
            vec![("a", 101)],
        ] {
            let change = TrafficChange {
                to_revisions: to.iter().map(|(r, p)| (r.to_string(), *p)).collect(),
                ..Default::default()
            };
            assert!(updated_traffic(&current, &change).is_err(), "{to:?}");
        }
    }

    #[test]
    fn tags_are_kept_moved_and_routed_to() {
        let current = [TrafficTarget::latest(100), rev("a", 0).with_tag("old")];
        let change = TrafficChange {
            update_tags: vec![("old".into(), "b".into()), ("new".into(), "a".into())],
            ..Default::default()
        };
        let moved = updated_traffic(&current, &change).unwrap();
        assert_eq!(
            moved,
            [
                TrafficTarget::latest(100),
                rev("b", 0).with_tag("old"),
                rev("a", 0).with_tag("new")
            ]
        );
        let change = TrafficChange {
            to_tags: vec![("new".into(), 100)],
            ..Default::default()
        };
        assert_eq!(
            updated_traffic(&moved, &change).unwrap(),
            [rev("a", 100).with_tag("new"), rev("b", 0).with_tag("old")]
        );
        let change = TrafficChange {
            to_latest: true,
            remove_tags: vec!["old".into()],
            ..Default::default()
        };
        assert_eq!(
            updated_traffic(&moved, &change).unwrap(),
            [TrafficTarget::latest(100), rev("a", 0).with_tag("new")]
        );
    }
}
