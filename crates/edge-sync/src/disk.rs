//! The disk policy, sans-IO: from the data partition's usage and the archives that may go,
//! what to delete and whether new recordings must be refused. Only archives whose copy is
//! complete in their target are ever candidates (edge-db `sync_evictable`).

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub total: u64,
    pub avail: u64,
}

impl Usage {
    pub fn free_percent(&self) -> f64 {
        if self.total == 0 { 100.0 } else { self.avail as f64 * 100.0 / self.total as f64 }
    }
}

/// The usage of the filesystem holding `path` (space available to unprivileged writers).
pub fn usage(path: &Path) -> std::io::Result<Usage> {
    let s = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let frag = s.fragment_size() as u64;
    Ok(Usage { total: s.blocks() as u64 * frag, avail: s.blocks_available() as u64 * frag })
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// Asset ids whose local copy to delete, oldest first.
    pub evict: Vec<String>,
    /// Refuse new recordings, and why.
    pub refuse: Option<String>,
}

/// `evictable`: (asset id, bytes it frees), oldest copy first. Deletes the fewest oldest
/// archives that bring free space back to `min_free_percent`; if even all of them cannot,
/// deletes them all and refuses new recordings (the rest of the disk is unsynced data).
pub fn decide(u: Usage, min_free_percent: f64, evictable: &[(String, u64)]) -> Decision {
    if min_free_percent <= 0.0 || u.free_percent() >= min_free_percent {
        return Decision::default();
    }
    let want = (u.total as f64 * min_free_percent / 100.0).ceil() as u64;
    let mut need = want.saturating_sub(u.avail);
    let mut evict = Vec::new();
    for (id, bytes) in evictable {
        if need == 0 {
            break;
        }
        evict.push(id.clone());
        need = need.saturating_sub(*bytes);
    }
    let refuse = (need > 0).then(|| {
        format!(
            "the data disk is full of recordings not yet synced to their storage targets ({:.1}% free, disk-min-free-percent = {min_free_percent}); new recordings are refused until uploads let the disk policy free space (GET /edge/v1/sync)",
            u.free_percent()
        )
    });
    Decision { evict, refuse }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(a, b)| (a.to_string(), *b)).collect()
    }

    #[test]
    fn deletes_the_fewest_oldest_synced_archives() {
        let u = Usage { total: 1000, avail: 50 };
        // 10 % wanted: 100 bytes free, so 50 more.
        let d = decide(u, 10.0, &e(&[("old", 30), ("mid", 30), ("new", 30)]));
        assert_eq!(d.evict, vec!["old", "mid"]);
        assert_eq!(d.refuse, None);
        assert_eq!(decide(Usage { total: 1000, avail: 200 }, 10.0, &e(&[("old", 30)])), Decision::default());
        assert_eq!(decide(u, 0.0, &e(&[("old", 30)])), Decision::default(), "0 = never delete");
    }

    #[test]
    fn refuses_new_recordings_when_unsynced_data_fills_the_disk() {
        let u = Usage { total: 1000, avail: 10 };
        let d = decide(u, 10.0, &e(&[("a", 20)]));
        assert_eq!(d.evict, vec!["a"]);
        assert!(d.refuse.as_deref().unwrap().contains("1.0% free"), "{d:?}");
        let d = decide(u, 10.0, &[]);
        assert!(d.evict.is_empty() && d.refuse.is_some());
    }

    #[test]
    fn measures_a_real_filesystem() {
        let u = usage(Path::new("/")).unwrap();
        assert!(u.total > 0 && u.avail <= u.total);
    }
}
