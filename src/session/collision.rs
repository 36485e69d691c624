//! Connection collision detection (RFC 4271 §6.8).

use super::Direction;
use std::net::Ipv4Addr;

/// Which connection survives when both an outbound and an inbound connection
/// reach OpenConfirm: the one initiated by the speaker with the higher BGP
/// Identifier (compared as 32-bit unsigned integers in host order).
pub fn survivor(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> Direction {
    if u32::from(local_id) < u32::from(remote_id) {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_identifier_keeps_its_own_connection() {
        let low: Ipv4Addr = "10.0.0.1".parse().unwrap();
        let high: Ipv4Addr = "10.0.0.2".parse().unwrap();
        assert_eq!(survivor(low, high), Direction::Inbound);
        assert_eq!(survivor(high, low), Direction::Outbound);
        // numeric, not lexical: 9.x < 10.x
        assert_eq!(
            survivor(
                "9.255.255.255".parse().unwrap(),
                "10.0.0.0".parse().unwrap()
            ),
            Direction::Inbound
        );
    }
}
