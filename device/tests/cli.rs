//! The binary's one-line errors, run as a user would run it.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmso-device"))
        .args(args)
        .output()
        .expect("run vmso-device");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    let (ok, err) = run(&[
        "--socket",
        "/nonexistent/x.sock",
        "--tap",
        "t0",
        "--mac",
        "01:00:5e:00:00:01",
    ]);
    assert!(!ok);
    assert!(err.contains("multicast"), "{err}");
    let (ok, err) = run(&[
        "--socket",
        "/tmp/vmso-cli-none.sock",
        "--tap",
        "a-name-far-too-long-for-ifnamsiz",
    ]);
    assert!(!ok);
    assert!(err.contains("longer than 15"), "{err}");
}
