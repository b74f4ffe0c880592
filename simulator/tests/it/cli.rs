//! The `p1-sim` binary: sinks, first-line contracts, determinism, error messages.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use dsmr::Framer;

fn p1sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_p1-sim"))
}

fn telegrams(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut f = Framer::<8192>::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (used, ev) = f.feed(rest);
        if let Some(ev) = ev {
            out.push(ev.expect("valid telegram").bytes.to_vec());
        }
        rest = &rest[used.max(1).min(rest.len())..];
    }
    out
}

#[test]
fn stdout_carries_only_telegrams_and_the_summary_goes_to_stderr() {
    let out = p1sim()
        .args(["run", "--stdout", "--speed", "max", "--count", "5", "--seed", "9", "--start", "2026-10-25T02:59:58"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ts = telegrams(&out.stdout);
    assert_eq!(ts.len(), 5);
    assert!(out.stdout.starts_with(b"/ISK5") && out.stdout.ends_with(b"\r\n"));
    let total: usize = ts.iter().map(|t| t.len() + 2).sum();
    assert_eq!(total, out.stdout.len(), "nothing but telegrams on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("summary: telegrams=5"), "{err}");
    // Across the October DST change: S then W.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0-0:1.0.0(261025025959S)") && text.contains("0-0:1.0.0(261025020000W)"), "{text}");
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let run = |seed: &str| {
        p1sim()
            .args(["run", "--stdout", "--speed", "max", "--count", "20", "--seed", seed, "--start", "2026-05-01T12:00:00", "--profile", "fluvius-emucs"])
            .stdin(Stdio::null())
            .output()
            .expect("run")
            .stdout
    };
    assert_eq!(run("4"), run("4"));
    assert_ne!(run("4"), run("5"));
}

#[test]
fn pty_path_is_the_first_stdout_line_and_the_device_delivers_telegrams() {
    let mut child = p1sim()
        .args(["run", "--pty", "--speed", "5", "--count", "8", "--progress", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
    let path = line.trim_end();
    assert!(path.starts_with("/dev/pts/"), "first line `{path}`");
    let mut port = tokio_serial::new(path, 115_200).timeout(Duration::from_millis(500)).open().expect("open pty");
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while telegrams(&got).len() < 2 && std::time::Instant::now() < deadline {
        if let Ok(n) = port.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(telegrams(&got).len() >= 2, "{}", String::from_utf8_lossy(&got));
}

#[test]
fn tcp_address_is_the_first_stdout_line_and_clients_receive_telegrams() {
    let mut child = p1sim()
        .args(["run", "--tcp", "127.0.0.1:0", "--speed", "10", "--count", "30", "--progress", "0", "--profile", "kaifa-dsmr42"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
    let addr = line.trim_end().to_owned();
    let mut clients: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(&addr).expect("connect")).collect();
    let mut firsts = Vec::new();
    for c in &mut clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while telegrams(&got).is_empty() {
            let n = c.read(&mut buf).expect("read");
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        firsts.push(telegrams(&got)[0].clone());
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(firsts.iter().all(|t| t.starts_with(b"/KFM5KAIFA-METER")));
}

#[test]
fn a_malformed_profile_error_names_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("p1sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/profiles/iskra-am550-td2.toml")).expect("read");
    let bad = text.replacen("format = \"F5(3,3)\", unit = \"kW\"", "format = \"F5(3,3)\", unit = \"kWh\"", 1);
    let path = dir.join("bad.toml");
    std::fs::write(&path, bad).expect("write");
    let mut tried = 0;
    let out = p1sim().args(["run", "--stdout", "--count", "1", "--profile", path.to_str().expect("utf8")]).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line_no = text.lines().position(|l| l.contains("1-0:1.7.0")).expect("line") + 1;
    assert!(err.contains(&format!("bad.toml:{line_no}:")) && err.contains("field `object[8].unit`") && err.contains("`kWh` is not a unit"), "{err}");
    tried += 1;
    let out = p1sim().args(["run", "--stdout", "--count", "1", "--profile", "no-such-meter"]).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("built-in profiles: iskra-am550-td2"));
    tried += 1;
    crate::hostile_inputs("simulator profiles", tried, "simulator it::cli::a_malformed_profile_error_names_file_line_and_field");
}

#[test]
fn profiles_lists_every_builtin() {
    let out = p1sim().arg("profiles").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["iskra-am550-td2", "dsmr5-single-phase", "kaifa-dsmr42", "dsmr22-iskra-mt382", "fluvius-emucs", "sagemcom-t211"] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(text.contains("9600 7E1"));
}

#[test]
fn a_fleet_serves_one_tcp_port_per_meter_with_different_seeds() {
    let mut child = p1sim()
        .args(["run", "--tcp", "127.0.0.1:0", "--meters", "3", "--speed", "5", "--count", "20", "--progress", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let addrs: Vec<String> = (0..3)
        .map(|_| {
            let mut l = String::new();
            out.read_line(&mut l).expect("line");
            l.trim_end().to_owned()
        })
        .collect();
    let mut firsts = Vec::new();
    for a in &addrs {
        let mut c = std::net::TcpStream::connect(a).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while telegrams(&got).is_empty() {
            let n = c.read(&mut buf).expect("read");
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        let t = telegrams(&got).remove(0);
        let eq = String::from_utf8_lossy(&t).lines().find(|l| l.starts_with("0-0:96.1.1") || l.starts_with("1-0:1.8.1")).map(str::to_owned);
        firsts.push(String::from_utf8_lossy(&t).lines().find(|l| l.starts_with("1-0:1.8.1")).map(str::to_owned).or(eq));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(addrs.len(), 3);
    assert!(firsts[0] != firsts[1] && firsts[1] != firsts[2], "independent seeds: {firsts:?}");
}
