//! The machine's primary address, for the default public host.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

/// The source address the kernel would use to reach the outside (a connected UDP socket sends
/// nothing), else the first non-loopback IPv4 interface address (an offline venue LAN may have
/// no default route), else loopback.
pub fn primary_address() -> IpAddr {
    if let Ok(s) = UdpSocket::bind("0.0.0.0:0")
        && s.connect("192.0.2.1:9").is_ok()
        && let Ok(a) = s.local_addr()
        && !a.ip().is_unspecified()
    {
        return a.ip();
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
                let ip = sin.ip();
                if !ip.is_loopback() && !ip.is_link_local() {
                    return IpAddr::V4(ip);
                }
            }
        }
    }
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}
