//! A real terminal for tests of the console: a private tmux server (its
//! own socket, so parallel tests never meet) with one session `t` whose
//! pane runs a host command, driven by keys and read back by
//! capture-pane. The server is killed when the `Tmux` is dropped.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A private tmux server with one session, `t`; killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Whether tmux runs on this machine (tests skip without it).
    pub fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Starts a server named `name`-PID whose session `t` is a `cols` x
    /// `rows` terminal running `command` (given to the host's sh).
    pub fn start(name: &str, cols: u16, rows: u16, command: &str) -> Tmux {
        let t = Tmux {
            socket: format!("{name}-{}", std::process::id()),
        };
        let (x, y) = (cols.to_string(), rows.to_string());
        let out = t.cmd(&["new-session", "-d", "-s", "t", "-x", &x, "-y", &y, command]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    /// Runs one tmux command against this server.
    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// Types `keys` (tmux key names, or text) into the pane.
    pub fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "t"];
        a.extend_from_slice(keys);
        let out = self.cmd(&a);
        assert!(
            out.status.success(),
            "tmux send-keys failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Resizes the terminal to `cols` x `rows`.
    pub fn resize(&self, cols: u16, rows: u16) {
        let (x, y) = (cols.to_string(), rows.to_string());
        let out = self.cmd(&["resize-window", "-t", "t", "-x", &x, "-y", &y]);
        assert!(
            out.status.success(),
            "tmux resize-window failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What the terminal shows, with up to 300 lines of history.
    pub fn pane(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-t", "t", "-S", "-300"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the pane (up to `secs`) until `ok` holds; panics with the
    /// pane's contents otherwise.
    pub fn wait(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let p = self.pane();
            if ok(&p) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the terminal shows:\n{p}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `key` every 2 s until `ok` holds (a key can arrive before
    /// the job it is meant for runs in the foreground).
    pub fn press_until(
        &self,
        key: &str,
        what: &str,
        secs: u64,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.keys(&[key]);
            let step = Instant::now() + Duration::from_secs(2);
            while Instant::now() < step {
                let p = self.pane();
                if ok(&p) {
                    return p;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the terminal shows:\n{}",
                self.pane()
            );
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}
