//! A service's memory and CPU figures read from its own cgroup, where neither
//! systemd (a user manager on cgroup v1 accounts nothing) nor podman (no
//! statistics for rootless containers on cgroup v1) tells them.

use std::path::Path;
use std::time::Duration;

/// What the kernel counts for a cgroup and everything below it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Memory in use now, page cache included (as systemd's `MemoryCurrent`).
    pub(crate) memory_current: Option<u64>,
    /// The most memory it has used.
    pub(crate) memory_peak: Option<u64>,
    /// CPU time used.
    pub(crate) cpu: Option<Duration>,
}

/// The usage of `control_group` (systemd's `ControlGroup=`, such as
/// `/user.slice/…/app.slice/db.service`) on this host.
pub(crate) fn usage(control_group: &str) -> Usage {
    usage_below(Path::new("/sys/fs/cgroup"), control_group)
}

/// [`usage`] with the cgroup file systems mounted at `root`: one unified
/// hierarchy (cgroup v2, `cgroup.controllers` at the top), or one directory per
/// v1 controller.
fn usage_below(root: &Path, control_group: &str) -> Usage {
    let relative = control_group.trim_start_matches('/');
    if relative.is_empty() || relative.split('/').any(|part| part == "..") {
        return Usage::default();
    }
    let number = |dir: &str, file: &str| -> Option<u64> {
        let path = root.join(dir).join(relative).join(file);
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    };
    if root.join("cgroup.controllers").exists() {
        let cpu = std::fs::read_to_string(root.join(relative).join("cpu.stat"))
            .ok()
            .and_then(|stat| {
                stat.lines()
                    .find_map(|line| line.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .map(Duration::from_micros);
        Usage {
            memory_current: number("", "memory.current"),
            memory_peak: number("", "memory.peak"),
            cpu,
        }
    } else {
        Usage {
            memory_current: number("memory", "memory.usage_in_bytes"),
            memory_peak: number("memory", "memory.max_usage_in_bytes"),
            cpu: number("cpuacct", "cpuacct.usage").map(Duration::from_nanos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, file: &str, content: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn reads_cgroup_v1_controllers() {
        let dir = tempfile::tempdir().unwrap();
        let cg = "user.slice/user@1001.service/app.slice/db.service";
        write(
            dir.path(),
            &format!("memory/{cg}/memory.usage_in_bytes"),
            "4096\n",
        );
        write(
            dir.path(),
            &format!("memory/{cg}/memory.max_usage_in_bytes"),
            "8192\n",
        );
        write(
            dir.path(),
            &format!("cpuacct/{cg}/cpuacct.usage"),
            "1500000000\n",
        );
        let usage = usage_below(dir.path(), &format!("/{cg}"));
        assert_eq!(
            usage,
            Usage {
                memory_current: Some(4096),
                memory_peak: Some(8192),
                cpu: Some(Duration::from_millis(1500)),
            }
        );
    }

    #[test]
    fn reads_the_unified_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "cgroup.controllers", "cpu memory pids\n");
        let cg = "system.slice/db.service";
        write(dir.path(), &format!("{cg}/memory.current"), "100\n");
        write(dir.path(), &format!("{cg}/memory.peak"), "200\n");
        write(
            dir.path(),
            &format!("{cg}/cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\n",
        );
        let usage = usage_below(dir.path(), &format!("/{cg}"));
        assert_eq!(usage.memory_current, Some(100));
        assert_eq!(usage.memory_peak, Some(200));
        assert_eq!(usage.cpu, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn nothing_known_is_none_and_paths_stay_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(usage_below(dir.path(), "/a.service"), Usage::default());
        assert_eq!(usage_below(dir.path(), ""), Usage::default());
        write(dir.path(), "memory/x/memory.usage_in_bytes", "1\n");
        assert_eq!(
            usage_below(&dir.path().join("memory/y"), "/../x"),
            Usage::default()
        );
    }
}
