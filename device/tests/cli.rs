//! The binary's one-line errors, run as a user would run it.

/// Runs the binary to completion: (success, stderr).
fn run(args: &[&str]) -> (bool, String) {
    common::run(args, &[])
}

#[test]
fn existing_socket_path_is_refused() {
    let dir = std::env::temp_dir().join(format!("vmso-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("exists.sock");
    std::fs::write(&sock, b"").unwrap();
    let (ok, err) = run(&["--socket", sock.to_str().unwrap(), "--tap", "vmsocli0"]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_mac_and_bad_tap_name_are_refused() {
    let cases: [(&[&str], &str); 2] = [
        (
            &[
                "--socket",
                "/nonexistent/x.sock",
                "--tap",
                "t0",
                "--mac",
                "01:00:5e:00:00:01",
            ],
            "multicast",
        ),
        (
            &[
                "--socket",
                "/tmp/vmso-cli-none.sock",
                "--tap",
                "a-name-far-too-long-for-ifnamsiz",
            ],
            "longer than 15",
        ),
    ];
    for (args, want) in cases {
        let (ok, err) = run(args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(want), "{err}");
    }
}

// ---------------------------------------------------------------- issue 10

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use common::{
    drain, frame, host_side, in_private_netns, in_tmpdir, send_fd, seqpacket_pair, spawn,
    start_on_tap, stop, wait_exit, wait_json, Running, Vmm,
};

/// The one `vmso-device: ...` line of a failed start.
fn error_line(err: &str) -> String {
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("vmso-device: "))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {err}");
    lines[0].to_string()
}

/// `args`, then `more`.
fn and<'a>(args: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [args, more].concat()
}

#[test]
fn bad_option_values_get_one_line_and_fail() {
    in_tmpdir("bad", |dir| {
        let sock = dir.join("s.sock");
        let s = sock.to_str().unwrap();
        let (dev, _peer) = seqpacket_pair();
        let pfd = dev.as_raw_fd().to_string();
        let missing = dir.join("missing/m.json");
        let pcap_in_proc = "/proc/vmso-test.pcapng";
        // A good socket path and wire, then the option under test.
        let good = ["--socket-path", s, "--socketpair-fd", &pfd];
        let cases: Vec<(Vec<&str>, &str)> = vec![
            // stdin is /dev/null: open, but not a TAP
            (vec!["--socket-path", s, "--tap-fd", "0"], "is not a TAP"),
            (vec!["--socket-path", s, "--tap-fd", "987"], "is not open"),
            (vec!["--socket-fd", "987", "--tap", "t0"], "is not open"),
            (vec!["--socket-fd", "0", "--tap", "t0"], "is not a socket"),
            (
                and(&good, &["--metrics", missing.to_str().unwrap()]),
                "does not exist",
            ),
            (
                and(&good, &["--pcap", pcap_in_proc]),
                "cannot create the capture file",
            ),
            (
                and(&good, &["--pcap", dir.to_str().unwrap()]),
                "cannot create the capture file",
            ),
            (
                and(&good, &["--pcap", "x.pcapng", "--pcap-snaplen", "0"]),
                "0 is not in 1..=262144",
            ),
            (
                vec!["--socket-path", s],
                "required arguments were not provided",
            ),
            (
                vec![
                    "--socket-path",
                    "/nonexistent-vmso/d.sock",
                    "--socketpair-fd",
                    &pfd,
                ],
                "directory /nonexistent-vmso does not exist",
            ),
            (
                vec!["--socket-path", s, "--tap", "t0", "--tap-fd", "3"],
                "cannot be used with",
            ),
        ];
        for (args, want) in cases {
            let (ok, err) = common::run(&args, &[dev.as_raw_fd()]);
            assert!(!ok, "{args:?} succeeded");
            let line = error_line(&err);
            assert!(line.contains(want), "{args:?}: {line}");
            assert!(!sock.exists(), "{args:?} left its socket");
        }
        assert!(!std::path::Path::new("x.pcapng").exists());
    });
}

/// A device on a socketpair wire: metrics written at start, on SIGUSR1
/// (with the traffic's counts) and at exit after SIGTERM; the capture is
/// complete at exit; the socket is removed.
#[test]
fn metrics_on_sigusr1_and_at_sigterm_with_capture() {
    in_tmpdir("metrics", |dir| {
        let pcap = dir.join("w.pcapng");
        let (dev, peer) = seqpacket_pair();
        let pfd = dev.as_raw_fd().to_string();
        let mut device = Running::start(
            dir,
            "d",
            &[
                "--socketpair-fd",
                &pfd,
                "--metrics-interval",
                "0",
                "--pcap",
                pcap.to_str().unwrap(),
            ],
            &[dev.as_raw_fd()],
        );
        let (sock, metrics) = (device.sock.clone(), device.metrics.clone());
        drop(dev);
        let v = wait_json(&metrics, |v| v["trigger"] == "start");
        assert_eq!(v["device"]["tx_packets"], 0);
        assert_eq!(v["pcap"]["active"], true);
        let mac = v["process"]["mac"].as_str().unwrap().to_string();
        assert!(mac.starts_with("02:"), "{mac}");

        let mut vmm = Vmm::connect(&sock);
        let sent: Vec<Vec<u8>> = (0..3).map(|i| frame(100 + 200 * i, i as u8)).collect();
        for f in &sent {
            vmm.send(f);
        }
        assert_eq!(drain(peer.as_raw_fd(), 3), sent);
        vmm.post_rx(8);
        let injected: Vec<Vec<u8>> = (0..2).map(|i| frame(80 + i, 0x40 + i as u8)).collect();
        for f in &injected {
            send_fd(peer.as_raw_fd(), f);
            assert_eq!(vmm.recv().as_ref(), Some(f));
        }

        device.signal(libc::SIGUSR1);
        let v = wait_json(&metrics, |v| v["trigger"] == "signal");
        let d = &v["device"];
        assert_eq!(d["tx_packets"], 3);
        assert_eq!(d["tx_frames"], 3);
        let tx_bytes: usize = sent.iter().map(Vec::len).sum();
        assert_eq!(d["tx_bytes"], tx_bytes as u64);
        assert_eq!(d["rx_packets"], 2);
        let rx_bytes: usize = injected.iter().map(Vec::len).sum();
        assert_eq!(d["rx_bytes"], rx_bytes as u64);
        assert_eq!(v["queues"][0]["tx_packets"], 3);
        assert_eq!(v["pcap"]["frames_out"], 3);
        assert_eq!(v["pcap"]["frames_in"], 2);
        assert_eq!(v["metrics"]["writes"], 1, "the start document came first");
        assert_eq!(v["process"]["mac"], mac.as_str());
        assert_eq!(
            vmm.mac().map(|b| format!("{b:02x}")).join(":"),
            mac,
            "the guest sees it"
        );

        stop(&mut device.child);
        let v = wait_json(&metrics, |_| true);
        assert_eq!(v["trigger"], "exit");
        assert_eq!(v["device"]["tx_packets"], 3);
        assert!(!sock.exists(), "socket removed at exit");
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");

        // The capture, read back independently, holds the frames both ways.
        let bytes = std::fs::read(&pcap).unwrap();
        let frames = epbs(&bytes);
        let out: Vec<_> = frames.iter().filter(|f| f.0).map(|f| f.1.clone()).collect();
        let inn: Vec<_> = frames
            .iter()
            .filter(|f| !f.0)
            .map(|f| f.1.clone())
            .collect();
        assert_eq!(out, sent);
        assert_eq!(inn, injected);
    });
}

/// (outbound, data) of every EPB of a pcapng file, through pcap-parser.
fn epbs(bytes: &[u8]) -> Vec<(bool, Vec<u8>)> {
    use pcap_parser::pcapng::Block;
    use pcap_parser::traits::PcapNGPacketBlock;
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (r, b) = pcap_parser::pcapng::parse_block_le(rest).expect("pcapng block");
        rest = r;
        if let Block::EnhancedPacket(e) = b {
            let flags = e.options.iter().find(|o| o.code.0 == 2).expect("epb_flags");
            let dir = u32::from_le_bytes(flags.value()[..4].try_into().unwrap()) & 3;
            out.push((dir == 2, e.packet_data().to_vec()));
        }
    }
    out
}

/// `--metrics FIFO`: one JSON document per line: start, SIGUSR1, exit.
#[test]
fn metrics_fifo_gets_one_line_per_document() {
    in_tmpdir("fifo", |dir| {
        let fifo = dir.join("m.fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // SAFETY: a valid C path; a non-blocking reader never waits for a writer.
        let rfd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        assert!(rfd >= 0);
        // SAFETY: a fresh fd we own.
        let reader = unsafe { OwnedFd::from_raw_fd(rfd) };
        let (dev, _peer) = seqpacket_pair();
        let pfd = dev.as_raw_fd().to_string();
        let mut device = Running::start_metrics(
            dir,
            "d",
            &fifo,
            &["--socketpair-fd", &pfd],
            &[dev.as_raw_fd()],
        );
        // Reads what the FIFO holds until `n` whole lines have come (10 s).
        let mut all = Vec::new();
        let mut read_lines = |n: usize| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut buf = [0u8; 65536];
            while all.iter().filter(|&&b| b == b'\n').count() < n {
                assert!(std::time::Instant::now() < deadline, "{n} lines never came");
                // SAFETY: valid buffer and fd.
                let r =
                    unsafe { libc::read(reader.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if r > 0 {
                    all.extend_from_slice(&buf[..r as usize]);
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        };
        read_lines(1);
        device.signal(libc::SIGUSR1);
        read_lines(2);
        device.signal(libc::SIGINT);
        assert_eq!(wait_exit(&mut device.child), 0);
        read_lines(3);
        let text = String::from_utf8(all).unwrap();
        let triggers: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one document per line"))
            .map(|v| v["trigger"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(triggers, ["start", "signal", "exit"]);
    });
}

/// `--socket-fd`: the device serves on a listening socket bound by the
/// test (the manager), and leaves its path alone at exit.
#[test]
fn socket_fd_serves_a_vmm() {
    in_tmpdir("sockfd", |dir| {
        let path = dir.join("managed.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let lfd = listener.as_raw_fd();
        let (dev, peer) = seqpacket_pair();
        let metrics = dir.join("m.json");
        let mut child = spawn(
            &[
                "--socket-fd",
                &lfd.to_string(),
                "--socketpair-fd",
                &dev.as_raw_fd().to_string(),
                "--metrics",
                metrics.to_str().unwrap(),
            ],
            &[lfd, dev.as_raw_fd()],
            &metrics,
            &dir.join("device.log"),
        );
        drop(listener);
        drop(dev);
        let v = wait_json(&metrics, |_| true);
        assert_eq!(v["process"]["socket"], format!("fd {lfd}"));
        let mut vmm = Vmm::connect(&path);
        let f = frame(300, 7);
        vmm.send(&f);
        assert_eq!(drain(peer.as_raw_fd(), 1), vec![f]);
        stop(&mut child);
        assert!(
            path.exists(),
            "a handed-over socket's path belongs to the manager"
        );
    });
}

/// `--tap-fd`: a TAP opened by the test (the manager) in a private network
/// namespace; frames cross it both ways. Needs root (skipped otherwise).
#[test]
fn tap_fd_serves_a_vmm() {
    in_private_netns("tap_fd_serves_a_vmm", "tapfd", |dir| {
        let (device, v) = start_on_tap(dir, "d", "vmsotfd0");
        let host = host_side("vmsotfd0");
        assert_eq!(v["process"]["wire"], "vmsotfd0");
        assert_eq!(v["process"]["vnet_hdr"], true);
        let mut vmm = Vmm::connect(&device.sock);
        send_to_host(&mut vmm, &host, frame(400, 1));
        vmm.post_rx(32);
        let inn = frame(200, 2);
        send_fd(host.as_raw_fd(), &inn);
        let mut got = false;
        while let Some(f) = vmm.recv() {
            if f == inn {
                got = true;
                break;
            }
        }
        assert!(got, "the guest received the host's frame");
        device.stop();
    });
}

/// The default MAC: two instances (two TAPs) differ, a restart keeps its
/// address, and it is the derived one. Needs root (skipped otherwise).
#[test]
fn default_macs_differ_per_tap_and_survive_a_restart() {
    in_private_netns(
        "default_macs_differ_per_tap_and_survive_a_restart",
        "mac",
        |dir| {
            let start = |name: &str, tag: &str| {
                let (device, v) = start_on_tap(dir, tag, name);
                let mac = v["process"]["mac"].as_str().unwrap().to_string();
                let guest = Vmm::connect(&device.sock)
                    .mac()
                    .map(|b| format!("{b:02x}"))
                    .join(":");
                assert_eq!(guest, mac, "the guest sees the derived MAC");
                device.stop();
                mac
            };
            let a = start("vmsomacA", "a1");
            let b = start("vmsomacB", "b1");
            assert_ne!(a, b, "two instances with defaults collide");
            let a2 = start("vmsomacA", "a2");
            assert_eq!(a, a2, "a restart keeps the MAC");
            assert_eq!(
                a,
                vmso_device::host::cli::format_mac(&vmso_device::host::cli::derive_mac("vmsomacA"))
            );
        },
    );
}

/// `--tap-fd A,B`: the two queues of a multi-queue TAP serve two queue
/// pairs, and the metrics show both; a count that does not match
/// `--queues`, or queues of two TAPs, are refused in one line. Needs root
/// (skipped otherwise).
#[test]
fn tap_fds_of_a_multi_queue_tap() {
    in_private_netns("tap_fds_of_a_multi_queue_tap", "tapmq", |dir| {
        let sock = dir.join("d.sock");
        let (q0, q1) = (
            common::open_tap_queue("vmsomq0"),
            common::open_tap_queue("vmsomq0"),
        );
        let other = common::open_tap_queue("vmsomq1");
        let s = sock.to_str().unwrap();
        let two = format!("{},{}", q0.as_raw_fd(), q1.as_raw_fd());
        let fds = [q0.as_raw_fd(), q1.as_raw_fd(), other.as_raw_fd()];
        let (ok, err) = common::run(
            &["--socket-path", s, "--tap-fd", &two, "--queues", "3"],
            &fds,
        );
        assert!(!ok);
        assert!(error_line(&err).contains("2 fd(s) for --queues 3"), "{err}");
        let mixed = format!("{},{}", q0.as_raw_fd(), other.as_raw_fd());
        let (ok, err) = common::run(&["--socket-path", s, "--tap-fd", &mixed], &fds);
        assert!(!ok);
        assert!(error_line(&err).contains("different TAPs"), "{err}");
        let device = Running::start(dir, "d", &["--tap-fd", &two], &fds);
        let v = wait_json(&device.metrics, |_| true);
        assert_eq!(v["process"]["wire"], "vmsomq0");
        assert_eq!(v["queues"].as_array().unwrap().len(), 2);
        let host = host_side("vmsomq0");
        let mut vmm = Vmm::connect(&device.sock);
        send_to_host(&mut vmm, &host, frame(400, 3));
        device.signal(libc::SIGUSR1);
        let v = wait_json(&device.metrics, |v| v["trigger"] == "signal");
        assert_eq!(v["device"]["tx_packets"], 1);
        let q: u64 = (0..2)
            .map(|i| v["queues"][i]["tx_packets"].as_u64().unwrap())
            .sum();
        assert_eq!(q, 1, "the queues add up to the device");
        device.stop();
    });
}

/// The guest sends `out`, and the host sees it on its side of the TAP.
fn send_to_host(vmm: &mut Vmm, host: &OwnedFd, out: Vec<u8>) {
    vmm.send(&out);
    assert!(
        common::wait_frame(host.as_raw_fd(), &out),
        "the host saw the frame"
    );
}
