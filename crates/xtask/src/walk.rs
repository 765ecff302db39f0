//! The browser walk (tests/browser/run.sh: headless Chromium through the admin UI, two baresip
//! phones calling) and the Debian packages that bring each real client.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Debian package that installs `tool`.
pub fn package_for(tool: &str) -> &str {
    match tool {
        "svwar" | "svcrack" | "svmap" => "sipvicious",
        "node" | "npm" => "nodejs npm",
        "initdb" | "pg_ctl" => "postgresql",
        other => other,
    }
}

/// One `apt-get install` line for these packages (`sudo` unless we are root).
pub fn apt_line<'a>(packages: impl IntoIterator<Item = &'a str>, root: bool) -> String {
    let pkgs: BTreeSet<&str> = packages
        .into_iter()
        .flat_map(str::split_whitespace)
        .collect();
    let pkgs: Vec<&str> = pkgs.into_iter().collect();
    format!(
        "{}apt-get install {}",
        if root { "" } else { "sudo " },
        pkgs.join(" ")
    )
}

/// `tool` on `PATH`, if it is there.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// How the walk went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk {
    Passed,
    Failed(String),
    /// Missing tools (and why, when a tool is there but will not do).
    Skipped {
        missing: Vec<String>,
        note: Option<String>,
    },
    /// Not attempted (a filtered run, or the run was interrupted).
    NotRun(String),
}

/// What the walk needs, as run.sh checks it: Chromium (`CHROMIUM` or /usr/bin/chromium),
/// baresip, and Node.js >= 20 with npm (playwright-core). Returns the missing tools.
pub fn missing_for_walk() -> (Vec<String>, Option<String>) {
    let mut missing = Vec::new();
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        missing.push("chromium".to_owned());
    }
    for tool in ["baresip", "node", "npm"] {
        if which(tool).is_none() {
            missing.push(tool.to_owned());
        }
    }
    let mut note = None;
    if !missing.iter().any(|t| t == "node") {
        let major = Command::new("node")
            .args(["-p", "process.versions.node.split('.')[0]"])
            .stdin(Stdio::null())
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            });
        if major.is_none_or(|m| m < 20) {
            note = Some(format!(
                "the walk needs Node.js >= 20 (playwright-core); this node is {}",
                major.map_or("unreadable".to_owned(), |m| format!("v{m}"))
            ));
        }
    }
    (missing, note)
}

/// Runs the walk against `bin` (the switchboard binary the tests built).
pub fn run(root: &Path, bin: &Path) -> Walk {
    let (missing, note) = missing_for_walk();
    if !missing.is_empty() || note.is_some() {
        return Walk::Skipped { missing, note };
    }
    if !bin.is_file() {
        return Walk::Failed(format!("no switchboard binary at {}", bin.display()));
    }
    println!("==> browser walk (tests/browser/run.sh: headless Chromium, two baresip phones)");
    let status = crate::runner::supervise(
        Command::new("bash")
            .arg(root.join("tests/browser/run.sh"))
            .current_dir(root)
            .env("SWITCHBOARD_BIN", bin),
        None,
    );
    match status {
        Ok(s) if s.success() => Walk::Passed,
        Ok(s) => Walk::Failed(format!("tests/browser/run.sh exited with {s}")),
        Err(e) => Walk::Failed(format!("cannot run tests/browser/run.sh: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_apt_line_names_each_package_once() {
        let tools = [
            "baresip", "svwar", "svcrack", "svmap", "node", "npm", "chromium",
        ];
        assert_eq!(
            apt_line(tools.iter().map(|t| package_for(t)), true),
            "apt-get install baresip chromium nodejs npm sipvicious"
        );
        assert_eq!(
            apt_line(["postgresql"], false),
            "sudo apt-get install postgresql"
        );
    }
}
