//! System tests of instance networking: real bridges, network namespaces, veths and iptables
//! rules. Root only (skipped elsewhere, failing under CI=true). Every test has its own bridge,
//! its own /24 inside 10.0.0.0/8 and its own state directory, and a guard that removes all of
//! it even when the test fails. Packets only ever go to addresses of the test's own subnet.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use runtime::net::{Attachment, NetError, Network, NetworkConfig};

const IP: &str = "/usr/sbin/ip";
const IPTABLES: &str = "/usr/sbin/iptables";
const BUSYBOX: &str = "/bin/busybox";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} {args:?}: {e}"))
}

fn ip_json(args: &[&str]) -> serde_json::Value {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let out = run(IP, &full);
    assert!(
        out.status.success(),
        "ip {full:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return serde_json::json!([]);
    }
    serde_json::from_str(&text).unwrap()
}

fn netns_exists(name: &str) -> bool {
    Path::new("/var/run/netns").join(name).exists()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn bridge_mac(bridge: &str) -> String {
    fs::read_to_string(format!("/sys/class/net/{bridge}/address"))
        .unwrap()
        .trim()
        .to_string()
}

fn bridge_ports(bridge: &str) -> Vec<String> {
    ip_json(&["link", "show", "master", bridge])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

/// The POSTROUTING rules that mention this subnet and bridge.
fn masquerade_rules(subnet: &str, bridge: &str) -> usize {
    let out = run(IPTABLES, &["-w", "-t", "nat", "-S", "POSTROUTING"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("-s {subnet} ")) && l.contains(&format!(" {bridge} ")))
        .count()
}

/// The FORWARD rules that mention this bridge.
fn forward_rules(bridge: &str) -> Vec<String> {
    let out = run(IPTABLES, &["-w", "-S", "FORWARD"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!(" {bridge} ")))
        .map(str::to_string)
        .collect()
}

/// Parses "a.b.c.d/len" (or a bare address) from `ip route` into (network, prefix).
fn parse_route_dst(dst: &str) -> Option<(u32, u32)> {
    let (addr, len) = dst.split_once('/').unwrap_or((dst, "32"));
    Some((u32::from(addr.parse::<Ipv4Addr>().ok()?), len.parse().ok()?))
}

/// True when the host already routes some of 10.b.c.0/24 somewhere: such a subnet is not ours.
fn subnet_in_use(b: u8, c: u8) -> bool {
    let ours = u32::from(Ipv4Addr::new(10, b, c, 0));
    ip_json(&["-4", "route", "show", "table", "all"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["dst"].as_str())
        .filter(|dst| *dst != "default")
        .filter_map(parse_route_dst)
        .any(|(net, len)| {
            let shorter = len.min(24);
            let mask = if shorter == 0 {
                0
            } else {
                u32::MAX << (32 - shorter)
            };
            net & mask == ours & mask
        })
}

/// One test's world: a unique bridge, /24 and state directory, and a unique prefix for its
/// instance ids. Dropping it releases and tears down everything, by API and then by force.
struct Fixture {
    bridge: String,
    /// 10.b.c.0 of the test's /24.
    base: [u8; 3],
    tag: String,
    dir: tempfile::TempDir,
    network: Option<Network>,
    attachments: Vec<Attachment>,
}

impl Fixture {
    /// None when the test must be skipped (not root, outside CI).
    fn new() -> Option<Fixture> {
        if !testkit::require(&[], true) {
            return None;
        }
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let mut idx = pid.wrapping_mul(64).wrapping_add(n) % (250 * 256);
        let (b, c) = loop {
            let b = (1 + idx / 256) as u8;
            let c = (idx % 256) as u8;
            if b != 88 && !subnet_in_use(b, c) {
                break (b, c);
            }
            idx = (idx + 4099) % (250 * 256);
        };
        Some(Fixture {
            bridge: format!("hrt{pid:x}x{n}"),
            base: [10, b, c],
            tag: format!("t{pid:x}x{n}i"),
            dir: tempfile::tempdir().unwrap(),
            network: None,
            attachments: Vec::new(),
        })
    }

    fn subnet(&self) -> String {
        self.subnet_with_prefix(24)
    }

    fn subnet_with_prefix(&self, prefix: u8) -> String {
        let [a, b, c] = self.base;
        format!("{a}.{b}.{c}.0/{prefix}")
    }

    fn gateway(&self) -> Ipv4Addr {
        let [a, b, c] = self.base;
        Ipv4Addr::new(a, b, c, 1)
    }

    fn config(&self, prefix: u8) -> NetworkConfig {
        NetworkConfig {
            bridge: self.bridge.clone(),
            subnet: self.subnet_with_prefix(prefix),
            state_dir: self.dir.path().join("state"),
        }
    }

    fn setup(&mut self) -> &Network {
        self.setup_with_prefix(24)
    }

    fn setup_with_prefix(&mut self, prefix: u8) -> &Network {
        let network = Network::setup(self.config(prefix)).expect("setup");
        self.network.insert(network)
    }

    fn network(&self) -> &Network {
        self.network.as_ref().expect("set up")
    }

    fn id(&self, name: &str) -> String {
        format!("{}{name}", self.tag)
    }

    fn attach(&mut self, name: &str) -> Attachment {
        let attachment = self.network().attach(&self.id(name)).expect("attach");
        self.attachments.push(attachment.clone());
        attachment
    }

    fn release(&mut self, attachment: &Attachment) {
        self.attachments.retain(|a| a != attachment);
        attachment.clone().release(self.network()).expect("release");
    }

    fn leases(&self) -> serde_json::Map<String, serde_json::Value> {
        let path = self
            .dir
            .path()
            .join(format!("state/leases-{}.json", self.bridge));
        match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).unwrap(),
            Err(_) => serde_json::Map::new(),
        }
    }

    fn my_netns(&self) -> Vec<String> {
        let prefix = format!("hr-{}", self.tag);
        fs::read_dir("/var/run/netns")
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|name| name.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Nothing of this test's instances is left: no namespace, no bridge port, no veth.
    fn assert_no_instances_left(&self, veths: &[String]) {
        assert_eq!(self.my_netns(), Vec::<String>::new(), "namespaces left");
        if link_exists(&self.bridge) {
            assert_eq!(
                bridge_ports(&self.bridge),
                Vec::<String>::new(),
                "ports left"
            );
        }
        for veth in veths {
            assert!(!link_exists(veth), "veth {veth} left");
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(network) = self.network.take() {
            for attachment in self.attachments.drain(..) {
                let _ = attachment.release(&network);
            }
            let _ = network.teardown();
        }
        // By force, in case the code under test is what failed.
        for netns in self.my_netns() {
            let _ = run(IP, &["netns", "del", &netns]);
        }
        if link_exists(&self.bridge) {
            let _ = run(IP, &["link", "del", "dev", &self.bridge]);
        }
        let rule = |action| {
            let subnet = self.subnet();
            let args = [
                "-w",
                "-t",
                "nat",
                action,
                "POSTROUTING",
                "-s",
                &subnet,
                "!",
                "-o",
                &self.bridge,
                "-j",
                "MASQUERADE",
            ];
            run(IPTABLES, &args).status.success()
        };
        while rule("-C") && rule("-D") {}
    }
}

/// Runs `f` on a thread that has joined the network namespace at `path`.
fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let file = fs::File::open(path).unwrap();
    std::thread::spawn(move || {
        // SAFETY: `file` is an open nsfs file; setns only changes this thread's namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
}

/// A one-shot TCP echo listener inside the namespace; returns once it listens.
fn listen_in(attachment: &Attachment, port: u16) -> std::thread::JoinHandle<String> {
    let (ready, listening) = mpsc::channel();
    let handle = in_netns(&attachment.netns_path, move || {
        let listener = TcpListener::bind(("0.0.0.0", port)).unwrap();
        ready.send(()).unwrap();
        let (mut conn, peer) = listener.accept().unwrap();
        let mut message = String::new();
        conn.read_to_string(&mut message).unwrap();
        let _ = conn.write_all(b"pong");
        format!("{message} from {}", peer.ip())
    });
    listening.recv_timeout(Duration::from_secs(5)).unwrap();
    handle
}

fn tcp_exchange(to: Ipv4Addr, port: u16) -> String {
    let mut conn =
        TcpStream::connect_timeout(&SocketAddr::from((to, port)), Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("connecting to {to}:{port}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    conn.write_all(b"ping").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    reply
}

fn ping_from(attachment: &Attachment, to: Ipv4Addr) {
    let to = to.to_string();
    let out = run(
        IP,
        &[
            "netns",
            "exec",
            &attachment.netns,
            BUSYBOX,
            "ping",
            "-c1",
            "-W2",
            &to,
        ],
    );
    assert!(
        out.status.success(),
        "ping {to} from {}: {}{}",
        attachment.netns,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn setup_is_idempotent_and_the_bridge_mac_is_fixed() {
    let Some(mut fx) = Fixture::new() else { return };
    let gateway = fx.setup().gateway();
    assert_eq!(gateway, fx.gateway());
    let mac = bridge_mac(&fx.bridge);
    assert!(mac.starts_with("02:"), "{mac}");

    // Again, as a restarted homerun would.
    fx.setup();
    assert_eq!(masquerade_rules(&fx.subnet(), &fx.bridge), 1);
    // Out from the bridge, and only replies in: once each, however often setup runs; above
    // them, nothing from the bridge to the cloud metadata address.
    let forward = forward_rules(&fx.bridge);
    assert_eq!(forward.len(), 3, "{forward:?}");
    let out = forward
        .iter()
        .position(|r| r == &format!("-A FORWARD -i {} -j ACCEPT", fx.bridge));
    assert!(out.is_some(), "{forward:?}");
    assert!(forward
        .iter()
        .any(|r| r.contains(&format!("-o {} ", fx.bridge)) && r.contains("RELATED,ESTABLISHED")));
    let reject = forward.iter().position(|r| {
        r.starts_with("-A FORWARD -d 169.254.169.254/32 ")
            && r.contains(&format!("-i {} ", fx.bridge))
            && r.contains("-j REJECT")
    });
    assert!(
        reject.is_some_and(|reject| forward[..reject].iter().all(|r| !r.contains("ACCEPT"))),
        "{forward:?}"
    );
    let addrs = ip_json(&["-4", "addr", "show", "dev", &fx.bridge]);
    assert_eq!(
        addrs[0]["addr_info"].as_array().unwrap().len(),
        1,
        "{addrs}"
    );
    assert_eq!(addrs[0]["addr_info"][0]["local"], fx.gateway().to_string());
    assert!(ip_json(&["link", "show", "dev", &fx.bridge])[0]["flags"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("UP")));
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );

    // Ports coming and going must not move the bridge's MAC address.
    let a = fx.attach("a");
    // The bridge and both ends of the veth take the uplink's MTU (1400 on a VM whose eth0
    // has it): nothing the instance sends is too big for the way out.
    let uplink = ip_json(&["-4", "route", "show", "default"]);
    let expected = match uplink[0]["dev"].as_str() {
        Some(dev) => ip_json(&["link", "show", "dev", dev])[0]["mtu"]
            .as_u64()
            .unwrap(),
        None => 1500,
    };
    assert_eq!(fx.network().mtu() as u64, expected);
    for (dev, netns) in [
        (fx.bridge.as_str(), None),
        (a.host_veth.as_str(), None),
        ("eth0", Some(a.netns.as_str())),
    ] {
        let link = match netns {
            None => ip_json(&["link", "show", "dev", dev]),
            Some(ns) => ip_json(&["-n", ns, "link", "show", "dev", dev]),
        };
        assert_eq!(link[0]["mtu"].as_u64(), Some(expected), "{dev}: {link}");
    }
    let b = fx.attach("b");
    assert_eq!(bridge_mac(&fx.bridge), mac);
    fx.release(&a);
    assert_eq!(bridge_mac(&fx.bridge), mac);
    fx.release(&b);
    assert_eq!(bridge_mac(&fx.bridge), mac);
    assert_eq!(fx.network().config().bridge, fx.bridge);

    let network = fx.network.take().unwrap();
    network.teardown().unwrap();
    assert!(!link_exists(&fx.bridge));
    assert_eq!(masquerade_rules(&fx.subnet(), &fx.bridge), 0);
    assert!(forward_rules(&fx.bridge).is_empty());
}

#[test]
fn attached_instances_reach_each_other_the_gateway_and_the_host_reaches_them() {
    let Some(mut fx) = Fixture::new() else { return };
    fx.setup();
    let a = fx.attach("a");
    let b = fx.attach("b");
    assert_ne!(a.address, b.address);
    for att in [&a, &b] {
        assert_eq!(att.prefix, 24);
        assert_eq!(att.netns_path, Path::new("/var/run/netns").join(&att.netns));
        assert!(netns_exists(&att.netns));
        assert!(bridge_ports(&fx.bridge).contains(&att.host_veth));
        assert!(att.host_veth.len() <= 15);

        let links = ip_json(&["-n", &att.netns, "link", "show"]);
        let links = links.as_array().unwrap();
        assert_eq!(links.len(), 2, "only lo and eth0: {links:?}");
        for name in ["lo", "eth0"] {
            let link = links.iter().find(|l| l["ifname"] == name).unwrap();
            let flags = link["flags"].as_array().unwrap();
            assert!(
                flags.contains(&serde_json::json!("UP")),
                "{name} down: {link}"
            );
        }
        let addrs = ip_json(&["-n", &att.netns, "-4", "addr", "show", "dev", "eth0"]);
        assert_eq!(addrs[0]["addr_info"][0]["local"], att.address.to_string());
        assert_eq!(addrs[0]["addr_info"][0]["prefixlen"], 24);
        let routes = ip_json(&["-n", &att.netns, "route", "show", "default"]);
        assert_eq!(routes[0]["gateway"], fx.gateway().to_string(), "{routes}");
        assert_eq!(routes[0]["dev"], "eth0");
        // The host's neighbour entry for the address is pinned to the instance's MAC, so
        // no other instance can answer ARP for it.
        let eth0 = links.iter().find(|l| l["ifname"] == "eth0").unwrap();
        let neigh = ip_json(&["neigh", "show", "dev", &fx.bridge]);
        let entry = neigh
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["dst"] == att.address.to_string())
            .unwrap_or_else(|| panic!("no neighbour entry for {}: {neigh}", att.address));
        assert_eq!(entry["lladdr"], eth0["address"], "{entry}");
        assert!(
            entry["state"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("PERMANENT")),
            "{entry}"
        );
    }

    ping_from(&a, fx.gateway());
    ping_from(&a, b.address);
    ping_from(&b, a.address);

    // TCP from b's namespace to a listener in a's.
    let listener = listen_in(&a, 7000);
    let b_address = b.address;
    let a_address = a.address;
    let reply = in_netns(&b.netns_path, move || tcp_exchange(a_address, 7000))
        .join()
        .unwrap();
    assert_eq!(reply, "pong");
    assert_eq!(listener.join().unwrap(), format!("ping from {b_address}"));

    // TCP from the host to a listener in b's namespace: it comes from the gateway.
    let listener = listen_in(&b, 7001);
    assert_eq!(tcp_exchange(b.address, 7001), "pong");
    assert_eq!(
        listener.join().unwrap(),
        format!("ping from {}", fx.gateway())
    );

    // The cloud metadata address is refused at once, never routed (nor left to time out).
    let refused = in_netns(&a.netns_path, || {
        let started = std::time::Instant::now();
        let connected = TcpStream::connect_timeout(
            &SocketAddr::from(([169, 254, 169, 254], 80)),
            Duration::from_secs(10),
        );
        (connected.map(drop), started.elapsed())
    })
    .join()
    .unwrap();
    // Refused (a REJECT), not timed out (a DROP or a route to nowhere).
    match refused {
        (Err(e), took) => {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{e} after {took:?}"
            );
        }
        (Ok(()), _) => panic!("an instance reached 169.254.169.254"),
    }
}

#[test]
fn release_frees_the_lease_and_removes_namespace_and_veth() {
    let Some(mut fx) = Fixture::new() else { return };
    fx.setup();
    let a = fx.attach("a");
    let b = fx.attach("b");
    assert_eq!(fx.leases().len(), 2);
    assert_eq!(fx.leases()[&a.address.to_string()], a.instance_id);

    fx.release(&a);
    assert!(!netns_exists(&a.netns));
    assert!(!link_exists(&a.host_veth));
    assert!(!fx.leases().contains_key(&a.address.to_string()));
    assert!(netns_exists(&b.netns), "releasing a left b alone");
    // Releasing again finds nothing to do.
    a.clone().release(fx.network()).unwrap();

    // The lowest free address is handed out again.
    let c = fx.attach("c");
    assert_eq!(c.address, a.address);
    fx.release(&c);
    fx.release(&b);
    assert!(fx.leases().is_empty());
    fx.assert_no_instances_left(&[a.host_veth, b.host_veth, c.host_veth]);
}

#[test]
fn concurrent_attaches_get_distinct_addresses() {
    let Some(mut fx) = Fixture::new() else { return };
    fx.setup();
    let ids: Vec<String> = (0..20).map(|i| fx.id(&format!("c{i}"))).collect();
    let results: Vec<Result<Attachment, NetError>> = std::thread::scope(|s| {
        let network = fx.network();
        let handles: Vec<_> = ids
            .iter()
            .map(|id| s.spawn(move || network.attach(id)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(attachment) => fx.attachments.push(attachment),
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let addresses: BTreeSet<Ipv4Addr> = fx.attachments.iter().map(|a| a.address).collect();
    assert_eq!(addresses.len(), 20);
    assert!(!addresses.contains(&fx.gateway()));
    assert_eq!(fx.leases().len(), 20);
    assert_eq!(bridge_ports(&fx.bridge).len(), 20);

    let attachments = fx.attachments.clone();
    let veths: Vec<String> = attachments.iter().map(|a| a.host_veth.clone()).collect();
    for attachment in &attachments {
        fx.release(attachment);
    }
    assert!(fx.leases().is_empty());
    fx.assert_no_instances_left(&veths);
}

#[test]
fn a_slash_30_exhausts_after_one_instance_and_leaves_nothing_behind() {
    let Some(mut fx) = Fixture::new() else { return };
    fx.setup_with_prefix(30);
    let first = fx.attach("a");
    let [a, b, c] = fx.base;
    assert_eq!(first.address, Ipv4Addr::new(a, b, c, 2));
    assert_eq!(first.prefix, 30);

    let err = fx.network().attach(&fx.id("b")).unwrap_err();
    assert!(matches!(err, NetError::Exhausted { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("exhausted") && message.contains(&fx.id("b")),
        "{message}"
    );
    assert!(!netns_exists(&format!("hr-{}", fx.id("b"))));
    assert_eq!(fx.leases().len(), 1);
    assert_eq!(bridge_ports(&fx.bridge), vec![first.host_veth.clone()]);

    fx.release(&first);
    fx.assert_no_instances_left(&[first.host_veth]);
}

#[test]
fn a_failed_attach_is_undone_and_names_the_step() {
    let Some(mut fx) = Fixture::new() else { return };
    fx.setup();
    // A namespace already in the way makes the second step fail.
    let id = fx.id("x");
    let netns = format!("hr-{id}");
    assert!(run(IP, &["netns", "add", &netns]).status.success());
    let err = fx.network().attach(&id).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "creating network namespace {netns} for instance {id}"
        )) && message.contains("ip netns add"),
        "{message}"
    );
    assert!(fx.leases().is_empty(), "lease kept: {:?}", fx.leases());
    assert!(netns_exists(&netns), "someone else's namespace must stay");
    assert!(run(IP, &["netns", "del", &netns]).status.success());

    // The same instance twice is refused without disturbing the first.
    let a = fx.attach("a");
    let err = fx.network().attach(&a.instance_id).unwrap_err();
    assert!(matches!(err, NetError::AlreadyLeased { .. }), "{err:?}");
    assert!(netns_exists(&a.netns) && link_exists(&a.host_veth));

    for bad in ["", "-ab", "../etc", "a b"] {
        let err = fx.network().attach(bad).unwrap_err();
        assert!(
            matches!(err, NetError::InvalidInstanceId { .. }),
            "{bad:?}: {err:?}"
        );
    }
    fx.release(&a);
    fx.assert_no_instances_left(&[a.host_veth]);
}

#[test]
fn recover_removes_instances_that_are_not_live() {
    let Some(mut fx) = Fixture::new() else { return };
    fx.setup();
    let live = fx.attach("live");
    let dead = fx.attach("dead");
    let gone = fx.attach("gone");
    // "gone"'s namespace vanished behind homerun's back; its lease remains.
    assert!(run(IP, &["netns", "del", &gone.netns]).status.success());

    let live_ids = vec![live.instance_id.clone(), gone.instance_id.clone()];
    let report = fx.network().recover(&live_ids).unwrap();
    assert_eq!(report.netns_removed, 1, "{report:?}");
    assert_eq!(report.leases_freed, 2, "{report:?}");
    assert!(report.veths_removed >= 1, "{report:?}");
    assert!(!netns_exists(&dead.netns));
    assert!(!link_exists(&dead.host_veth));
    assert!(netns_exists(&live.netns));
    assert_eq!(bridge_ports(&fx.bridge), vec![live.host_veth.clone()]);
    let leases = fx.leases();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[&live.address.to_string()], live.instance_id);
    ping_from(&live, fx.gateway());

    // Nothing more to do the second time.
    let again = fx.network().recover(&live_ids).unwrap();
    assert_eq!(again, Default::default());

    fx.attachments.retain(|a| a == &live);
    fx.release(&live);
    fx.assert_no_instances_left(&[live.host_veth, dead.host_veth, gone.host_veth]);
}

#[test]
fn invalid_configs_are_refused_before_anything_is_created() {
    let Some(fx) = Fixture::new() else { return };
    let state_dir = fx.dir.path().join("never-created");
    let config = |bridge: &str, subnet: &str| NetworkConfig {
        bridge: bridge.to_string(),
        subnet: subnet.to_string(),
        state_dir: state_dir.clone(),
    };
    let subnet = fx.subnet();
    let cases = [
        (config("hrtoolongbridge0", &subnet), "at most 15"),
        (config("", &subnet), "empty"),
        (config("br 0", &subnet), "may contain only"),
        (config(&fx.bridge, "10.0.0/24"), "not an IPv4 address"),
        (config(&fx.bridge, "10.0.0.0"), "CIDR"),
        (config(&fx.bridge, "10.0.0.0/33"), "outside /8 to /30"),
        (config(&fx.bridge, "10.0.0.0/31"), "outside /8 to /30"),
        (config(&fx.bridge, "10.0.0.0/7"), "outside /8 to /30"),
        (config(&fx.bridge, "10.0.0.1/24"), "host bits"),
    ];
    for (config, expected) in cases {
        let err = Network::setup(config.clone()).unwrap_err();
        assert!(
            matches!(err, NetError::InvalidConfig(_)),
            "{config:?}: {err:?}"
        );
        assert!(err.to_string().contains(expected), "{config:?}: {err}");
    }
    assert!(!state_dir.exists());
    assert!(!link_exists(&fx.bridge));
    assert!(!link_exists("hrtoolongbridge"));
    assert_eq!(masquerade_rules(&subnet, &fx.bridge), 0);
}
