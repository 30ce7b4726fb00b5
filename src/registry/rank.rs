//! A rank: which daemon syncs a user. One process per rank, 1 to 999.

use std::fmt;
use std::num::NonZeroU16;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rank(NonZeroU16);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rank: a rank is a whole number from 1 to 999")]
pub struct RankError(pub String);

impl Rank {
    pub const MIN: Rank = Rank(NonZeroU16::MIN);
    pub const MAX: Rank = match NonZeroU16::new(999) {
        Some(n) => Rank(n),
        None => Rank(NonZeroU16::MIN),
    };

    pub fn new(n: u16) -> Option<Rank> {
        NonZeroU16::new(n)
            .filter(|n| n.get() <= Rank::MAX.get())
            .map(Rank)
    }

    pub fn get(self) -> u16 {
        self.0.get()
    }

    /// The rank's directory name inside the state directory.
    pub fn dir_name(self) -> String {
        format!("rank-{}", self.get())
    }
}

impl fmt::Display for Rank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Rank {
    type Err = RankError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u16>()
            .ok()
            .and_then(Rank::new)
            .ok_or_else(|| RankError(s.to_string()))
    }
}

impl Serialize for Rank {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.get())
    }
}

impl<'de> Deserialize<'de> for Rank {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u16::try_from(n)
            .ok()
            .and_then(Rank::new)
            .ok_or_else(|| serde::de::Error::custom(RankError(n.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_one_to_999() {
        assert_eq!("1".parse::<Rank>().unwrap().get(), 1);
        assert_eq!("999".parse::<Rank>().unwrap().get(), 999);
        assert!("0".parse::<Rank>().is_err());
        assert!("1000".parse::<Rank>().is_err());
        assert!("-1".parse::<Rank>().is_err());
        assert!("x".parse::<Rank>().is_err());
        assert_eq!(Rank::new(3).unwrap().dir_name(), "rank-3");
    }
}
