//! Addresses on the loopback interface, read over rtnetlink.

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::AddressAttribute;

/// Every address on `lo`, as a host route (/32, /128): the loopback itself,
/// whatever prefix length it was configured with.
pub async fn loopback_addresses() -> Result<Vec<IpNet>, String> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| e.to_string())?;
    let conn = tokio::spawn(connection);
    let index = super::transport::if_index("lo").map_err(|e| e.to_string())?;
    let mut dump = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    let mut found = Vec::new();
    while let Some(msg) = dump.try_next().await.map_err(|e| e.to_string())? {
        // IFA_LOCAL is the interface's own address on IPv4; IFA_ADDRESS on IPv6.
        let addr = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            })
            .or_else(|| {
                msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
        if let Some(ip) = addr {
            found.push(IpNet::from(ip));
        }
    }
    conn.abort();
    Ok(found)
}
