//! Networking inside one instance: TCP and UDP over lo (IPv4 and IPv6),
//! the socket API's edge cases against the host's, an epoll echo server
//! with 200 concurrent clients, python's http.server fetched with urllib
//! and curl, netlink route through iproute2, and that nothing but the
//! instance itself is reachable.

mod common;

use common::{differential, Flavour};

fn socket_edges(flavour: Flavour) {
    let (native, ruml) = differential("socket_edges", flavour, &[]);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(ruml.stdout.ends_with("result: OK\n"), "{ruml}");
}

/// bind/connect/option/data edge cases, compared errno for errno.
#[test]
fn socket_edges_static() {
    socket_edges(Flavour::Static);
}

#[test]
fn socket_edges_dynamic() {
    socket_edges(Flavour::Dynamic);
}

fn echo_ok(out: &common::Output) {
    assert!(
        out.stdout
            .contains("clients: 200, bytes each: 65536, mismatched bytes: 0, server exit: 0"),
        "{out}"
    );
}

/// 200 nonblocking clients against an epoll server, every byte checked.
#[test]
fn tcp_epoll_echo_v4() {
    let (native, ruml) = differential("tcp_epoll_echo", Flavour::Dynamic, &["4"]);
    echo_ok(&native);
    echo_ok(&ruml);
}

#[test]
fn tcp_epoll_echo_v6() {
    let (native, ruml) = differential("tcp_epoll_echo", Flavour::Static, &["6"]);
    echo_ok(&native);
    echo_ok(&ruml);
}

/// A backlog far below the client count: connectors wait in the listener's
/// queue for accepts instead of failing (under ruml only: a host may drop
/// such connections under load).
#[test]
fn tcp_epoll_echo_small_backlog() {
    let guest = common::build_guest("tcp_epoll_echo", Flavour::Static);
    let env = common::test_env();
    for (fam, backlog) in [("4", "16"), ("6", "0")] {
        let out = common::run_ruml(&guest.path, &[fam, backlog], &env);
        assert_eq!(out.code(), 0, "{out}");
        echo_ok(&out);
    }
}

/// python3 -m http.server on 127.0.0.1 and ::1, fetched with urllib and
/// curl inside the same instance.
#[test]
fn http_server_loopback() {
    let script = common::workspace_root().join("tests/scripts/http_loopback.py");
    let env = common::test_env();
    let native = common::run_native("/usr/bin/python3", &[script.as_os_str()], &env);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    let ruml = common::run_ruml("/usr/bin/python3", &[script.as_os_str()], &env);
    common::assert_same(&native, &ruml);
    assert!(ruml.stdout.contains("urllib ::1 200 300000 True"), "{ruml}");
}

fn ip_bin() -> Option<&'static str> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// iproute2 over netlink route: addresses, link up/down, adding an
/// address that then works for bind and connect, routes.
#[test]
fn iproute2_in_guest() {
    let Some(ip) = ip_bin() else {
        panic!("iproute2 is not installed (.ci/run installs it)");
    };
    let script = format!(
        "{ip} addr show; echo ---; {ip} link set dev lo down; {ip} link show lo; \
         python3 -c 'import socket; s=socket.socket(); print(s.connect_ex((\"127.0.0.1\", 9)))'; \
         {ip} link set dev lo up; {ip} -4 addr add 10.11.12.13/24 dev lo; echo ---; {ip} -4 addr show dev lo; \
         echo ---; {ip} route show table all; echo ---; {ip} -6 addr; \
         python3 -c 'import socket; s=socket.socket(); s.bind((\"10.11.12.13\",0)); s.listen(); c=socket.create_connection(s.getsockname()); print(\"via added address\", c.getpeername()[0])'; \
         {ip} addr del 10.11.12.13/24 dev lo; {ip} -4 -o addr | wc -l"
    );
    let out = common::run_ruml("/bin/sh", &["-c", &script], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    let parts: Vec<&str> = out.stdout.split("---\n").collect();
    assert_eq!(parts.len(), 5, "{out}");
    assert!(
        parts[0].contains("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536"),
        "{out}"
    );
    assert!(parts[0].contains("inet 127.0.0.1/8 scope host lo"), "{out}");
    assert!(parts[0].contains("inet6 ::1/128 scope host"), "{out}");
    assert!(parts[1].contains("1: lo: <LOOPBACK> mtu 65536"), "{out}");
    assert!(parts[1].contains("state DOWN"), "{out}");
    // lo down: 127.0.0.1 is unreachable.
    assert!(parts[1].contains("\n101\n"), "{out}");
    assert!(parts[2].contains("inet 127.0.0.1/8 scope host lo"), "{out}");
    assert!(
        parts[2].contains("inet 10.11.12.13/24 scope global lo"),
        "{out}"
    );
    assert!(
        parts[3]
            .contains("local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1"),
        "{out}"
    );
    assert!(
        parts[3].contains(
            "local 10.11.12.13 dev lo table local proto kernel scope host src 10.11.12.13"
        ),
        "{out}"
    );
    assert!(
        parts[3].contains("::1 dev lo proto kernel metric 256"),
        "{out}"
    );
    assert!(parts[4].contains("inet6 ::1/128 scope host"), "{out}");
    assert!(
        parts[4].contains("via added address 10.11.12.13\n"),
        "{out}"
    );
    assert!(out.stdout.ends_with("\n1\n"), "{out}");
}

/// With eth0=none only the instance itself answers: other addresses are
/// unreachable, and guest sockets are not host sockets (a port the test
/// listens on, on the host's loopback, is not reachable from the guest).
#[test]
fn only_loopback_reachable() {
    let host = std::net::TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = host.local_addr().expect("addr").port();
    let script = format!(
        "import socket, errno\n\
         for a in ('10.0.2.2', '192.0.2.1', '8.8.8.8'):\n\
         \x20   s = socket.socket(); print(a, errno.errorcode[s.connect_ex((a, 80))])\n\
         s = socket.socket(socket.AF_INET6); print('2001:db8::1', errno.errorcode[s.connect_ex(('2001:db8::1', 80))])\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         try:\n\
         \x20   u.sendto(b'x', ('192.0.2.1', 53))\n\
         except OSError as e: print('udp', errno.errorcode[e.errno])\n\
         s = socket.socket(); print('host port', errno.errorcode[s.connect_ex(('127.0.0.1', {port}))])\n"
    );
    let out = common::run_ruml("/usr/bin/python3", &["-c", &script], &common::test_env());
    assert_eq!(
        out.stdout,
        "10.0.2.2 ENETUNREACH\n192.0.2.1 ENETUNREACH\n8.8.8.8 ENETUNREACH\n\
         2001:db8::1 ENETUNREACH\nudp ENETUNREACH\nhost port ECONNREFUSED\n",
        "{out}"
    );
    drop(host);
}

/// /proc/net/{tcp,tcp6,udp,unix,if_inet6,dev} and `ss` (which reads them)
/// show the instance's own sockets.
#[test]
fn proc_net_and_ss() {
    let script = "import socket, subprocess, sys\n\
         s = socket.socket(); s.bind(('127.0.0.1', 8080)); s.listen()\n\
         s6 = socket.socket(socket.AF_INET6); s6.bind(('::1', 8081)); s6.listen()\n\
         c = socket.create_connection(('127.0.0.1', 8080))\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 5353))\n\
         x = socket.socket(socket.AF_UNIX); x.bind('\\0ruml-test'); x.listen()\n\
         for f in ('tcp', 'tcp6', 'udp', 'unix', 'if_inet6', 'dev'):\n\
         \x20   print('==', f); sys.stdout.write(open('/proc/net/' + f).read())\n\
         sys.stdout.flush()\n\
         subprocess.run(['ss', '-tlnH'], stderr=subprocess.DEVNULL)\n";
    let out = common::run_ruml("/usr/bin/python3", &["-c", script], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    let s = &out.stdout;
    assert!(s.contains(": 0100007F:1F90 00000000:0000 0A "), "{out}");
    assert!(s.contains(" 0100007F:1F90 01 "), "{out}");
    assert!(
        s.contains(
            ": 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A "
        ),
        "{out}"
    );
    assert!(s.contains(": 00000000:14E9 00000000:0000 07 "), "{out}");
    assert!(s.contains(" 00010000 0001 01 0 @ruml-test\n"), "{out}");
    assert!(
        s.contains("00000000000000000000000000000001 01 80 10 80       lo\n"),
        "{out}"
    );
    assert!(s.contains("    lo: "), "{out}");
    let ss: Vec<Vec<&str>> = s
        .lines()
        .filter(|l| l.starts_with("LISTEN"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        ss.iter().any(|l| l.get(3) == Some(&"127.0.0.1:8080")),
        "{out}"
    );
    assert!(ss.iter().any(|l| l.get(3) == Some(&"[::1]:8081")), "{out}");
}

/// Hostile input: malformed sockaddrs, huge and bad iovecs, bad option
/// pointers, garbage netlink, floods of connections and datagrams.
/// Under ruml only (natively, as root, it would add addresses to the
/// host's lo; the program checks uname for that too).
#[test]
fn hostile_input() {
    let guest = common::build_guest("net_hostile", Flavour::Static);
    let out = common::run_ruml(&guest.path, &[] as &[&str], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        out.stdout
            .contains("ok 300 addresses: 254 added, then ENOSPC"),
        "{out}"
    );
    assert!(out.stdout.ends_with("result: OK\n"), "{out}");
}

/// Ping sockets over lo, IPv4 and IPv6 (tests/scripts/ping_sockets.py).
#[test]
fn ping_sockets() {
    let script = common::workspace_root().join("tests/scripts/ping_sockets.py");
    let out = common::run_ruml(
        "/usr/bin/python3",
        &[script.as_os_str()],
        &common::test_env(),
    );
    assert_eq!(out.code(), 0, "{out}");
    let mut want = String::new();
    for (host, typ) in [("127.0.0.1", 0), ("::1", 129)] {
        for seq in 0..3 {
            want.push_str(&format!(
                "{host} type {typ} code 0 seq {seq} payload ok True ident is port True checksum ok True from {host}\n"
            ));
        }
        want.push_str(
            "not an echo request: Invalid argument\nunreachable: Network is unreachable\n",
        );
    }
    assert_eq!(out.stdout, want, "{out}");
}

/// /sys/class/net/lo, read live: flags and operstate follow `ip link`.
#[test]
fn sys_class_net() {
    let Some(ip) = ip_bin() else {
        panic!("iproute2 is not installed (.ci/run installs it)");
    };
    let script = format!(
        "cd /sys/class/net/lo && cat ifindex mtu type address flags operstate && \
         {ip} link set dev lo down && cat flags operstate && {ip} link set dev lo up && cat operstate"
    );
    let out = common::run_ruml("/bin/sh", &["-c", &script], &common::test_env());
    assert_eq!(
        out.stdout, "1\n65536\n772\n00:00:00:00:00:00\n0x9\nunknown\n0x8\ndown\nunknown\n",
        "{out}"
    );
}

/// net-tools' `netstat` (which reads /proc/net) lists the instance's
/// listeners: TCP over IPv4 and IPv6, UDP.
#[test]
fn netstat_lists_listeners() {
    let Some(netstat) = ["/usr/bin/netstat", "/bin/netstat"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("skipped: no netstat (Debian's net-tools)");
        return;
    };
    let script = format!(
        "import socket, subprocess\n\
         s = socket.socket(); s.bind(('127.0.0.1', 8080)); s.listen()\n\
         s6 = socket.socket(socket.AF_INET6); s6.bind(('::1', 8081)); s6.listen()\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 5353))\n\
         subprocess.run(['{netstat}', '-tlnu'], check=True)\n"
    );
    let out = common::run_ruml("/usr/bin/python3", &["-c", &script], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let has = |want: &[&str]| rows.iter().any(|r| r.as_slice() == want);
    assert!(
        has(&["tcp", "0", "0", "127.0.0.1:8080", "0.0.0.0:*", "LISTEN"]),
        "{out}"
    );
    assert!(
        has(&["tcp6", "0", "0", "::1:8081", ":::*", "LISTEN"]),
        "{out}"
    );
    assert!(
        has(&["udp", "0", "0", "0.0.0.0:5353", "0.0.0.0:*"]),
        "{out}"
    );
}

/// ruml's default is eth0=user (the test harness gives every other run
/// eth0=none): without an eth0= parameter the guest has eth0 10.0.2.15/24
/// and a default route via 10.0.2.2.
#[test]
fn eth0_user_is_the_default() {
    let mut cmd = std::process::Command::new(common::ruml_bin());
    if let Some(m) = common::test_mode() {
        cmd.arg(format!("mode={m}"));
    }
    let ip = ip_bin().unwrap_or("ip");
    cmd.args([
        "quiet",
        "--",
        "/bin/sh",
        "-c",
        &format!("cat /sys/class/net/eth0/address; {ip} -4 addr show dev eth0; {ip} route"),
    ]);
    let out = common::run_command(
        cmd,
        &common::test_env(),
        "ruml (default eth0) ip addr".into(),
        common::TIMEOUT,
    );
    assert_eq!(out.code(), 0, "{out}");
    let s = &out.stdout;
    assert!(
        s.starts_with(
            "52:54:00:12:34:56
"
        ),
        "{out}"
    );
    assert!(s.contains("inet 10.0.2.15/24 scope global eth0"), "{out}");
    assert!(s.contains("default via 10.0.2.2 dev eth0"), "{out}");
}

/// eth0=user: eth0 is 10.0.2.15/24 with a default route via 10.0.2.2, and
/// a guest TCP client reaches a server the test runs on the host's
/// loopback through 10.0.2.2 (blocking and nonblocking connects, both
/// directions, half-close); a closed host port is ECONNREFUSED.
#[test]
fn eth0_user_reaches_host_loopback() {
    use std::io::{Read, Write};
    let srv = std::net::TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = srv.local_addr().expect("addr").port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let cport = closed.local_addr().expect("addr").port();
    drop(closed);
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut c, _) = srv.accept().expect("accept");
            let mut data = Vec::new();
            c.read_to_end(&mut data).expect("read");
            c.write_all(&data.to_ascii_uppercase()).expect("write");
        }
    });
    let script = format!(
        "import socket, errno, select\n\
         c = socket.create_connection(('10.0.2.2', {port}), timeout=30)\n\
         print('peer', c.getpeername()[0], 'me', c.getsockname()[0])\n\
         c.sendall(b'through the nat ' * 20000); c.shutdown(socket.SHUT_WR)\n\
         got = b''\n\
         while True:\n\
         \x20   d = c.recv(65536)\n\
         \x20   if not d: break\n\
         \x20   got += d\n\
         print(len(got), got == b'THROUGH THE NAT ' * 20000)\n\
         c2 = socket.socket(); c2.setblocking(False)\n\
         print(errno.errorcode.get(c2.connect_ex(('10.0.2.2', {port}))))\n\
         select.select([], [c2], [], 30)\n\
         print('SO_ERROR', c2.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))\n\
         c2.send(b'nonblocking'); c2.shutdown(socket.SHUT_WR); c2.setblocking(True)\n\
         print(c2.recv(100))\n\
         s = socket.socket(); print('closed port', errno.errorcode[s.connect_ex(('10.0.2.2', {cport}))])\n"
    );
    let ip = ip_bin().unwrap_or("ip");
    let sh = format!("{ip} addr show eth0 && {ip} route && python3 -c \"$0\"");
    let out = common::run_ruml_raw(
        &["quiet", "eth0=user", "--", "/bin/sh", "-c", &sh, &script],
        &common::test_env(),
    );
    server.join().expect("server");
    assert_eq!(out.code(), 0, "{out}");
    let s = &out.stdout;
    assert!(
        s.contains("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500"),
        "{out}"
    );
    assert!(
        s.contains("link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff"),
        "{out}"
    );
    assert!(s.contains("inet 10.0.2.15/24 scope global eth0"), "{out}");
    assert!(s.contains("default via 10.0.2.2 dev eth0"), "{out}");
    assert!(
        s.contains("10.0.2.0/24 dev eth0 proto kernel scope link src 10.0.2.15"),
        "{out}"
    );
    assert!(
        s.ends_with(
            "peer 10.0.2.2 me 10.0.2.15\n320000 True\nEINPROGRESS\nSO_ERROR 0\nb'NONBLOCKING'\n\
             closed port ECONNREFUSED\n"
        ),
        "{out}"
    );
}

/// hostfwd=tcp:127.0.0.1:HOSTPORT:8080 with eth0=user: a host client
/// reaches a guest server, which sees it come from 10.0.2.2.
#[test]
fn hostfwd_reaches_guest_server() {
    use std::io::{Read, Write};
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let hport = free.local_addr().expect("addr").port();
    drop(free);
    let guest = "import socket\n\
         l = socket.socket(); l.bind(('0.0.0.0', 8080)); l.listen()\n\
         c, a = l.accept()\n\
         data = b''\n\
         while True:\n\
         \x20   d = c.recv(65536)\n\
         \x20   if not d: break\n\
         \x20   data += d\n\
         c.sendall(b'from ' + a[0].encode() + b': ' + data.upper()); c.close()\n";
    let fwd = format!("hostfwd=tcp:127.0.0.1:{hport}:8080");
    let bg = common::Background::start(&[
        "quiet",
        "eth0=user",
        &fwd,
        "--",
        "/usr/bin/python3",
        "-c",
        guest,
    ]);
    let msg = b"hello guest ".repeat(1000);
    let mut want = b"from 10.0.2.2: ".to_vec();
    want.extend(msg.to_ascii_uppercase());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no answer through hostfwd; ruml's stderr:\n{}",
            bg.stderr()
        );
        // Until the guest listens, the forwarder closes what it accepts.
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", hport)) {
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(30)));
            let _ = c.write_all(&msg);
            let _ = c.shutdown(std::net::Shutdown::Write);
            let mut got = Vec::new();
            let _ = c.read_to_end(&mut got);
            if !got.is_empty() {
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// hostfwd=udp:127.0.0.1:HOSTPORT:5300 with eth0=user: a host client's
/// datagrams reach the guest's server on port 5300 (from 10.0.2.2 and the
/// client's port) and the replies come back from HOSTPORT, so a connected
/// host client takes them.
#[test]
fn hostfwd_udp_reaches_guest_server() {
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe");
    let host_port = probe.local_addr().expect("addr").port();
    drop(probe);
    let script = "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5300))\n\
         seen = []\n\
         while len(seen) < 3:\n\
         \x20   d, a = s.recvfrom(100)\n\
         \x20   s.sendto(d.upper(), a)\n\
         \x20   if (a[0], d) not in seen: seen.append((a[0], d))\n\
         for a, d in seen: print(a, d.decode())\n";
    let fwd = format!("hostfwd=udp:127.0.0.1:{host_port}:5300");
    let env = common::test_env();
    let guest = std::thread::spawn(move || {
        common::run_ruml_raw(
            &[
                "quiet",
                "eth0=user",
                &fwd,
                "--",
                "/usr/bin/python3",
                "-c",
                script,
            ],
            &env,
        )
    });
    let c = std::net::UdpSocket::bind("127.0.0.1:0").expect("client");
    c.connect(("127.0.0.1", host_port)).expect("connect");
    c.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .expect("timeout");
    // Liveness only: the guest's server binds a moment after boot; a
    // datagram before that is dropped, as on a network, so each word is
    // sent again until its reply comes (a repeat is answered again).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut buf = [0u8; 100];
    for word in ["one", "two", "three"] {
        let got = loop {
            assert!(std::time::Instant::now() < deadline, "no reply to {word}");
            c.send(word.as_bytes()).expect("send");
            if let Ok(n) = c.recv(&mut buf) {
                break String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        };
        assert_eq!(got, word.to_uppercase());
    }
    let out = guest.join().expect("guest");
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout, "10.0.2.2 one\n10.0.2.2 two\n10.0.2.2 three\n",
        "{out}"
    );
}

/// eth0=user, UDP: a query to 10.0.2.3:53 reaches the resolver named by
/// dns= (a socket the test runs on the host's loopback) and its answer
/// comes back from 10.0.2.3:53; a datagram to 10.0.2.2:PORT reaches the
/// host's loopback and the answer comes from 10.0.2.2.
#[test]
fn eth0_user_udp_and_dns() {
    let serve = |tag: &'static [u8]| {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = s.local_addr().expect("addr").port();
        let h = std::thread::spawn(move || {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(60)));
            let mut buf = [0u8; 2048];
            for _ in 0..2 {
                let Ok((n, a)) = s.recv_from(&mut buf) else {
                    return;
                };
                let mut reply = tag.to_vec();
                reply.extend(buf[..n].iter().rev());
                let _ = s.send_to(&reply, a);
            }
        });
        (port, h)
    };
    let (dport, dh) = serve(b"dns:");
    let (eport, eh) = serve(b"echo:");
    let guest = format!(
        "import socket\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(30)\n\
         u.sendto(b'query', ('10.0.2.3', 53)); print(u.recvfrom(100))\n\
         u.sendto(b'hello', ('10.0.2.2', {eport})); d, a = u.recvfrom(100); print(d, a == ('10.0.2.2', {eport}))\n\
         c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(30); c.connect(('10.0.2.3', 53))\n\
         c.send(b'abc'); print(c.recv(100), c.getsockname()[0])\n\
         e = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); e.sendto(b'x', ('10.0.2.2', {eport}))\n\
         print(e.recvfrom(100)[0])\n"
    );
    let dns = format!("dns=127.0.0.1:{dport}");
    let out = common::run_ruml_raw(
        &[
            "quiet",
            "eth0=user",
            &dns,
            "--",
            "/usr/bin/python3",
            "-c",
            &guest,
        ],
        &common::test_env(),
    );
    let _ = (dh.join(), eh.join());
    assert_eq!(
        out.stdout,
        "(b'dns:yreuq', ('10.0.2.3', 53))\nb'echo:olleh' True\nb'dns:cba' 10.0.2.15\nb'echo:x'\n",
        "{out}"
    );
}

/// TCP_INFO, UDP control messages (IP_PKTINFO, IP_TTL, IP_TOS, IPv6
/// pktinfo/hop limit/traffic class, SO_TIMESTAMP[NS]), control-buffer
/// truncation and multicast on lo, compared with the host
/// (tests/guest/inet_cmsg.c).
#[test]
fn inet_cmsg_tcp_info_multicast() {
    let (native, ruml) = differential("inet_cmsg", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "native run failed:\n{native}");
    assert!(ruml.stdout.ends_with("result: OK\n"), "{ruml}");
}

/// Whether this test runs as root on the host (raw sockets need it
/// natively).
fn host_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Raw ICMP and ICMPv6 sockets as root (tests/guest/raw_icmp.c): compared
/// with the host when the host run is root too (CI's is), else checked
/// under ruml alone (its guest is root).
#[test]
fn raw_icmp_sockets() {
    let guest = common::build_guest("raw_icmp", Flavour::Static);
    let env = common::test_env();
    let ruml = common::run_ruml(&guest.path, &[] as &[&str], &env);
    assert!(ruml.stdout.ends_with("result: OK\n"), "{ruml}");
    if host_root() {
        let native = common::run_native(&guest.path, &[] as &[&str], &env);
        common::assert_same(&native, &ruml);
    }
    for want in [
        "reply: icmp type 0 code 0 id ok 1 seq 1 sum ok 1 payload ok 1\n",
        "bound socket: icmp type 8 code 0 id ok 1 seq 2 sum ok 1 payload ok 1\n",
        "reply6: 22 bytes from ::1: icmp6 type 129 code 0 id ok 1 seq 7 sum set 1 payload ok 1\n",
        "no answer: -1 EAGAIN\n",
        "unprivileged raw: -1 EPERM\n",
    ] {
        assert!(ruml.stdout.contains(want), "missing {want:?}:\n{ruml}");
    }
}

/// iputils `ping` inside the instance, as root, to 127.0.0.1 and ::1.
#[test]
fn ping_command() {
    let out = common::run_ruml(
        "/bin/sh",
        &[
            "-c",
            "ping -c 2 -i 0.2 -W 5 127.0.0.1 && ping -c 2 -i 0.2 -W 5 ::1 && echo pings-ok",
        ],
        &common::test_env(),
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.stdout
            .matches("2 packets transmitted, 2 received")
            .count(),
        2,
        "{out}"
    );
    assert!(
        out.stdout.contains("64 bytes from ::1: icmp_seq=1"),
        "{out}"
    );
    assert!(out.stdout.ends_with("pings-ok\n"), "{out}");
}

/// `ss` over NETLINK_SOCK_DIAG: listeners with their process (-p needs
/// /proc/PID/fd to name `socket:[INODE]`), UDP, TCP_INFO through
/// INET_DIAG_INFO (only netlink carries bytes_received, so this is not
/// the /proc/net fallback), and `ss -s` from /proc/net/sockstat.
#[test]
fn ss_sock_diag() {
    let script = "import socket, subprocess, sys, os\n\
         s = socket.socket(); s.bind(('127.0.0.1', 8080)); s.listen(128)\n\
         s6 = socket.socket(socket.AF_INET6); s6.bind(('::1', 8081)); s6.listen()\n\
         c = socket.create_connection(('127.0.0.1', 8080)); a, _ = s.accept(); c.sendall(b'abc')\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 5353))\n\
         print('link', os.readlink('/proc/self/fd/%d' % s.fileno()), os.fstat(s.fileno()).st_ino == int(os.readlink('/proc/self/fd/%d' % s.fileno())[8:-1]))\n\
         sys.stdout.flush()\n\
         for args in (['-tlnp'], ['-uanp'], ['-tani'], ['-s']):\n\
         \x20   print('==', *args); sys.stdout.flush()\n\
         \x20   subprocess.run(['ss'] + args, stderr=subprocess.DEVNULL)\n";
    let out = common::run_ruml("/usr/bin/python3", &["-c", script], &common::test_env());
    assert_eq!(out.code(), 0, "{out}");
    let s = &out.stdout;
    assert!(
        s.contains("link socket:[") && s.contains("] True\n"),
        "{out}"
    );
    let rows = |section: &str| -> Vec<Vec<String>> {
        let part = s
            .split("== ")
            .find(|p| p.starts_with(section))
            .unwrap_or("");
        part.lines()
            .skip(2)
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    };
    let tl = rows("-tlnp");
    assert!(
        tl.iter().any(|r| r[0] == "LISTEN"
            && r[2] == "128"
            && r[3] == "127.0.0.1:8080"
            && r[5].starts_with("users:((\"python3\"")),
        "{out}"
    );
    assert!(tl.iter().any(|r| r[3] == "[::1]:8081"), "{out}");
    let ua = rows("-uanp");
    assert!(
        ua.iter()
            .any(|r| r[0] == "UNCONN" && r[3] == "0.0.0.0:5353"),
        "{out}"
    );
    assert!(s.contains("bytes_received:3"), "{out}");
    assert!(s.contains("bytes_sent:3"), "{out}");
    assert!(s.contains("ESTAB  3 "), "{out}");
    assert!(s.contains("TCP:   4 ("), "{out}");
    assert!(s.contains("UDP\t  1         1         0"), "{out}");
}

/// Runs tests/guest/NAME.c natively and under ruml and compares the two,
/// when the tests run as root (the program needs setresuid or unshare
/// natively); the native output must contain `want`.
fn as_root_differential(name: &str, want: &str) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{name}: needs root natively; skipped");
        return;
    }
    let (native, _) = differential(name, Flavour::Static, &[]);
    assert!(native.stdout.contains(want), "{native}");
}

/// /proc/net/tcp and udp show each socket's owner (the creator's uid; an
/// accepted connection its listener's) and only the reader's network
/// namespace's sockets. Needs root natively (setresuid, unshare).
#[test]
fn proc_net_sockets_show_owner_and_namespace() {
    as_root_differential("procnet_owner", "");
}

/// /proc/net/unix lists the reader's network namespace's unix sockets
/// only, and abstract names are per namespace while path names are not
/// (tests/guest/procnet_unix_ns.c). Needs root natively (unshare).
#[test]
fn proc_net_unix_is_per_network_namespace() {
    as_root_differential("procnet_unix_ns", "child binds the same abstract name: yes");
}

/// /proc/net/snmp's TCP and UDP counters move as Linux's do for a
/// connection, a refused connect and datagrams on lo, in a fresh network
/// namespace (tests/guest/procnet_snmp.c). Needs root natively (unshare).
#[test]
fn proc_net_snmp_counts_tcp_and_udp() {
    as_root_differential("procnet_snmp", "Tcp ActiveOpens +2 PassiveOpens +1");
}
