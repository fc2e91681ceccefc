//! SPDK's transport ID: where a controller is, as users write it
//! (`trtype:tcp adrfam:ipv4 traddr:127.0.0.2 trsvcid:4420 subnqn:NQN`).

use core::fmt;
use core::str::FromStr;

/// Transport type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrType {
    /// NVMe/TCP.
    Tcp,
    /// NVMe/RDMA.
    Rdma,
}

impl TrType {
    /// SPDK's upper-case spelling, as in RPC results ("TCP", "RDMA").
    pub fn as_str(&self) -> &'static str {
        match self {
            TrType::Tcp => "TCP",
            TrType::Rdma => "RDMA",
        }
    }
}

impl FromStr for TrType {
    type Err = TridError;
    fn from_str(s: &str) -> Result<Self, TridError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(TrType::Tcp),
            "rdma" => Ok(TrType::Rdma),
            _ => Err(TridError::BadValue { key: "trtype", value: s.to_string() }),
        }
    }
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdrFam {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl AdrFam {
    /// SPDK's spelling in RPC results ("IPv4", "IPv6").
    pub fn as_str(&self) -> &'static str {
        match self {
            AdrFam::Ipv4 => "IPv4",
            AdrFam::Ipv6 => "IPv6",
        }
    }
}

impl FromStr for AdrFam {
    type Err = TridError;
    fn from_str(s: &str) -> Result<Self, TridError> {
        match s.to_ascii_lowercase().as_str() {
            "ipv4" => Ok(AdrFam::Ipv4),
            "ipv6" => Ok(AdrFam::Ipv6),
            _ => Err(TridError::BadValue { key: "adrfam", value: s.to_string() }),
        }
    }
}

/// Why a transport ID string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TridError {
    /// A `key:value` pair has no colon.
    #[error("'{0}' is not key:value")]
    NotKeyValue(String),
    /// A key this parser does not know.
    #[error("unknown transport ID key '{0}'")]
    UnknownKey(String),
    /// A value that is not allowed for its key.
    #[error("bad {key} '{value}'")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
    },
    /// A required key is absent.
    #[error("missing {0}")]
    Missing(&'static str),
}

/// A controller's address on a fabric.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransportId {
    /// Transport type.
    pub trtype: TrType,
    /// Address family.
    pub adrfam: AdrFam,
    /// Transport address (an IP address for TCP and RDMA).
    pub traddr: String,
    /// Transport service ID (the port).
    pub trsvcid: String,
    /// Subsystem NQN.
    pub subnqn: String,
}

impl TransportId {
    /// A TCP/IPv4 transport ID.
    pub fn tcp(traddr: &str, trsvcid: &str, subnqn: &str) -> Self {
        TransportId {
            trtype: TrType::Tcp,
            adrfam: AdrFam::Ipv4,
            traddr: traddr.to_string(),
            trsvcid: trsvcid.to_string(),
            subnqn: subnqn.to_string(),
        }
    }
}

impl FromStr for TransportId {
    type Err = TridError;

    /// Parses SPDK's form: whitespace-separated `key:value` pairs, keys case-insensitive.
    /// `adrfam` defaults to ipv4, `trsvcid` to 4420, `subnqn` to the discovery NQN.
    fn from_str(s: &str) -> Result<Self, TridError> {
        let mut trtype = None;
        let mut adrfam = AdrFam::Ipv4;
        let mut traddr = None;
        let mut trsvcid = "4420".to_string();
        let mut subnqn = protocol::DISCOVERY_NQN.to_string();
        for pair in s.split_whitespace() {
            let (k, v) = pair.split_once([':', '=']).ok_or_else(|| TridError::NotKeyValue(pair.to_string()))?;
            match k.to_ascii_lowercase().as_str() {
                "trtype" => trtype = Some(v.parse()?),
                "adrfam" => adrfam = v.parse()?,
                "traddr" => traddr = Some(v.to_string()),
                "trsvcid" => {
                    v.parse::<u16>().map_err(|_| TridError::BadValue { key: "trsvcid", value: v.to_string() })?;
                    trsvcid = v.to_string();
                }
                "subnqn" => subnqn = v.to_string(),
                _ => return Err(TridError::UnknownKey(k.to_string())),
            }
        }
        Ok(TransportId {
            trtype: trtype.ok_or(TridError::Missing("trtype"))?,
            adrfam,
            traddr: traddr.ok_or(TridError::Missing("traddr"))?,
            trsvcid,
            subnqn,
        })
    }
}

impl fmt::Display for TransportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trtype:{} adrfam:{} traddr:{} trsvcid:{} subnqn:{}",
            self.trtype.as_str().to_ascii_lowercase(),
            self.adrfam.as_str().to_ascii_lowercase(),
            self.traddr,
            self.trsvcid,
            self.subnqn
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spdk_trid_and_prints_it_back() {
        let s = "trtype:tcp adrfam:ipv4 traddr:127.0.0.2 trsvcid:4420 subnqn:nqn.2021-06.io.spdk:ctc_rbd0";
        let t: TransportId = s.parse().unwrap();
        assert_eq!(t.trtype, TrType::Tcp);
        assert_eq!(t.traddr, "127.0.0.2");
        assert_eq!(t.subnqn, "nqn.2021-06.io.spdk:ctc_rbd0");
        assert_eq!(t.to_string(), s);
    }

    #[test]
    fn rejects_unknown_keys_and_missing_address() {
        assert_eq!("trtype:tcp".parse::<TransportId>(), Err(TridError::Missing("traddr")));
        assert!(matches!("trtype:tcp traddr:1 foo:bar".parse::<TransportId>(), Err(TridError::UnknownKey(_))));
        assert!(matches!("trtype:fc traddr:1".parse::<TransportId>(), Err(TridError::BadValue { .. })));
        assert!(matches!("trtype:tcp traddr:1 trsvcid:99999".parse::<TransportId>(), Err(TridError::BadValue { .. })));
    }
}
