//! `--shard I/N`: splits the scenarios across N runners. Scenario k (in name order) goes to shard
//! k mod N + 1, so every scenario runs on exactly one shard and shards differ by at most one.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub total: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: expected I/N, e.g. 1/3"))?;
        let index: usize = i.trim().parse().map_err(|_| format!("`{s}`: I is not a number"))?;
        let total: usize = n.trim().parse().map_err(|_| format!("`{s}`: N is not a number"))?;
        if total == 0 || index == 0 || index > total {
            return Err(format!("`{s}`: need 1 <= I <= N"));
        }
        Ok(Shard { index, total })
    }
}

impl Shard {
    pub fn select<T>(&self, items: Vec<T>) -> Vec<T> {
        items.into_iter().enumerate().filter(|(k, _)| k % self.total == self.index - 1).map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_lands_on_exactly_one_shard() {
        let items: Vec<u32> = (0..10).collect();
        let mut all: Vec<u32> = (1..=3).flat_map(|i| Shard { index: i, total: 3 }.select(items.clone())).collect();
        all.sort();
        assert_eq!(all, items);
        assert_eq!(Shard::from_str("2/3").unwrap().select(items.clone()), vec![1, 4, 7]);
    }

    #[test]
    fn bad_shards_are_rejected() {
        for s in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(Shard::from_str(s).is_err(), "{s}");
        }
    }
}
