//! Name resolution from `/etc/hosts` only.
//!
//! A static glibc binary cannot load NSS modules, and the probe must never send a DNS query
//! off the machine: the names it needs (`metadata.google.internal`) are written into the
//! container's `/etc/hosts` by the platform.

use std::net::IpAddr;

/// Looks `name` up in the hosts file at `path`.
pub fn lookup_in(path: &str, name: &str) -> Option<IpAddr> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_lookup(&text, name)
}

fn parse_lookup(text: &str, name: &str) -> Option<IpAddr> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let addr: IpAddr = fields.next()?.parse().ok()?;
            fields
                .any(|alias| alias.eq_ignore_ascii_case(name))
                .then_some(addr)
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_aliases_and_skips_comments() {
        let hosts = "127.0.0.1 localhost\n# 10.0.0.9 metadata.google.internal\n10.88.0.1 metadata.google.internal metadata # gw\n";
        assert_eq!(
            parse_lookup(hosts, "metadata").unwrap().to_string(),
            "10.88.0.1"
        );
        assert_eq!(
            parse_lookup(hosts, "METADATA.google.internal")
                .unwrap()
                .to_string(),
            "10.88.0.1"
        );
        assert!(parse_lookup(hosts, "example.com").is_none());
    }
}
