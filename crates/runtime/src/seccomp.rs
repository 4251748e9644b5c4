//! Docker's default seccomp profile, as an OCI `linux.seccomp` section for runc.
//!
//! The model is moby's `profiles/seccomp/default.json` (the profile `docker run` applies unless
//! told otherwise), resolved the way dockerd resolves it for one concrete situation: an x86_64
//! host, a modern kernel (>= 4.8), and Docker's default capability set (CHOWN, DAC_OVERRIDE,
//! FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE,
//! SYS_CHROOT, KILL, AUDIT_WRITE). dockerd evaluates the profile's `includes`/`excludes`
//! (arches, caps, minKernel) before handing the spec to runc; homerun never grants extra
//! capabilities, so that evaluation is done once here and the result is a plain OCI profile:
//!
//! - everything not listed fails with EPERM (`defaultAction: SCMP_ACT_ERRNO`,
//!   `defaultErrnoRet: 1`);
//! - the base allowlist ([`allowed_syscalls`] minus the extra groups below) is allowed outright;
//! - `ptrace`, `process_vm_readv`, `process_vm_writev` are allowed (moby gates them on
//!   `minKernel: 4.8` only, because older kernels let ptrace bypass seccomp);
//! - `arch_prctl` and `modify_ldt` are allowed (moby's amd64/x32/x86 arch groups);
//! - `chroot` is allowed (moby gates it on CAP_SYS_CHROOT, which is a default capability);
//! - `socket` is allowed for every address family except AF_VSOCK;
//! - `personality` is allowed only for the handful of personas moby lists;
//! - `clone` is allowed only without namespace-creating flags (moby's rule for containers
//!   without CAP_SYS_ADMIN);
//! - `clone3` fails with ENOSYS instead of EPERM: its flags live in a struct seccomp cannot
//!   inspect, so it cannot get `clone`'s filter, and ENOSYS makes glibc (>= 2.34) fall back to
//!   `clone`, where the filter applies.
//!
//! Deliberately absent (moby allows them only with capabilities homerun does not grant):
//! mount and the new mount API, `unshare`, `setns`, `bpf`, `perf_event_open`, `kcmp`,
//! `pidfd_getfd`, `process_madvise`, the module, reboot, clock-setting, raw-I/O and NUMA
//! policy calls. Also absent, as in moby since 2023 (moby#46762): the `io_uring_*` calls,
//! because io_uring can perform operations that seccomp never sees. Calls moby never lists at
//! all (`keyctl`, `add_key`, `request_key`, `kexec_load`, `pivot_root`, `userfaultfd`,
//! `swapon`, ...) fall through to the EPERM default.
//!
//! Syscall names that do not exist on one of the three ABIs (`chown32` on x86_64, `arch_prctl`
//! on x86, ...) are skipped by runc when it resolves names per architecture, exactly as with
//! Docker's profile, so one name list serves all three.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompOperator,
    LinuxSyscall,
};

/// moby's base `names` group: allowed unconditionally on every architecture and with any
/// capability set. Byte-order sorted (moby's own list is "almost" sorted, ignoring `_`), one
/// name per line so additions are easy to review against upstream.
///
/// This is the list as of moby#46762 (Docker 25 dropped `io_uring_enter`,
/// `io_uring_register` and `io_uring_setup`) and moby#47341 (added the kernel 6.5–6.7 calls
/// `cachestat`, `fchmodat2`, `futex_requeue`, `futex_wait`, `futex_wake`,
/// `map_shadow_stack`).
const BASE_ALLOW: &[&str] = &[
    "_llseek",
    "_newselect",
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// moby's `minKernel: 4.8` group. Before 4.8 a ptraced process could change the syscall number
/// after seccomp had checked it; from 4.8 on seccomp re-checks, so Docker allows tracing inside
/// the container (of processes in the same container, subject to the usual ptrace rules).
const MIN_KERNEL_4_8_ALLOW: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

/// moby's arch-specific groups that apply to x86_64 and its x86/x32 sub-architectures:
/// `arch_prctl` (amd64, x32: needed to set up TLS) and `modify_ldt` (amd64, x32, x86: used by
/// 32-bit and Wine-style code).
const X86_ALLOW: &[&str] = &["arch_prctl", "modify_ldt"];

/// moby's capability-gated groups whose capability is in Docker's default set: only `chroot`
/// (CAP_SYS_CHROOT). The other default capabilities gate nothing in the profile.
const DEFAULT_CAPS_ALLOW: &[&str] = &["chroot"];

/// `personality(2)` arguments moby allows: PER_LINUX (0x0), PER_LINUX32 (0x8), UNAME26
/// (0x20000), PER_LINUX32|UNAME26 (0x20008) and 0xffffffff, which only queries the current
/// persona. Anything else (e.g. ADDR_NO_RANDOMIZE, which disables ASLR) is refused.
const PERSONALITY_ALLOWED: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// `clone(2)` flags that create namespaces; moby refuses `clone` with any of them when the
/// container lacks CAP_SYS_ADMIN. Together 0x7E020000 (2114060288 in moby's JSON).
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// AF_VSOCK: moby allows `socket` for every address family except this one, so containers
/// cannot talk to the hypervisor or host over vsock.
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;

/// Docker's default seccomp profile for x86_64 containers with Docker's default capabilities
/// (see the module documentation for how moby's conditional groups were resolved).
pub fn docker_default() -> LinuxSeccomp {
    let mut syscalls = vec![allow(&allowed_syscalls())];
    // One rule per value: conditions within one rule are ANDed in the OCI spec (runc only
    // treats several conditions on the same argument as alternatives as a legacy special
    // case), so moby writes one rule per allowed persona and so do we.
    syscalls.extend(PERSONALITY_ALLOWED.iter().filter_map(|&persona| {
        allow_if(
            "personality",
            0,
            persona,
            None,
            LinuxSeccompOperator::ScmpCmpEq,
        )
    }));
    syscalls.extend(allow_if(
        "socket",
        0,
        AF_VSOCK,
        None,
        LinuxSeccompOperator::ScmpCmpNe,
    ));
    // (flags & CLONE_NAMESPACE_FLAGS) == 0. For MASKED_EQ, runc takes `value` as the mask and
    // `valueTwo` as the expected result; moby leaves `valueTwo` out (it defaults to 0), it is
    // spelled out here for clarity. Argument 0 holds the flags on x86 (s390 differs).
    syscalls.extend(allow_if(
        "clone",
        0,
        CLONE_NAMESPACE_FLAGS,
        Some(0),
        LinuxSeccompOperator::ScmpCmpMaskedEq,
    ));
    syscalls.push(errno(&["clone3"], libc::ENOSYS));

    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(errno_ret(libc::EPERM)))
        .set_architectures(Some(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ]))
        .set_syscalls(Some(syscalls));
    profile
}

/// Every syscall the profile allows without looking at arguments: moby's base group plus the
/// groups that apply on x86_64 with a >= 4.8 kernel and the default capabilities. Sorted and
/// free of duplicates. `personality`, `socket` and `clone` are not here: they are allowed only
/// for some arguments (see [`docker_default`]).
pub fn allowed_syscalls() -> Vec<String> {
    let mut names: Vec<String> = BASE_ALLOW
        .iter()
        .chain(MIN_KERNEL_4_8_ALLOW)
        .chain(X86_ALLOW)
        .chain(DEFAULT_CAPS_ALLOW)
        .map(|name| (*name).to_owned())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn allow<S: AsRef<str>>(names: &[S]) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|n| n.as_ref().to_owned()).collect())
        .set_action(LinuxSeccompAction::ScmpActAllow);
    rule
}

/// A rule allowing `name` only when argument `index` compares true with `value` (and
/// `value_two` for MASKED_EQ).
///
/// `LinuxSeccompArg` can only be made through its builder, whose `build` is fallible in type
/// although it cannot fail with every field set. Should it ever fail, the rule is left out:
/// the syscall then falls to the EPERM default, so the profile errs on the closed side (and
/// the tests, which look for these rules, catch it).
fn allow_if(
    name: &str,
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> Option<LinuxSyscall> {
    let mut condition = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    if let Some(value_two) = value_two {
        condition = condition.value_two(value_two);
    }
    let condition = condition.build().ok()?;
    let mut rule = allow(&[name]);
    rule.set_args(Some(vec![condition]));
    Some(rule)
}

fn errno(names: &[&str], errno: libc::c_int) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|n| (*n).to_owned()).collect())
        .set_action(LinuxSeccompAction::ScmpActErrno)
        .set_errno_ret(Some(errno_ret(errno)));
    rule
}

/// errno constants are small positive `c_int`s; the OCI field is unsigned.
fn errno_ret(errno: libc::c_int) -> u32 {
    errno.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Calls a container must never get under the default profile.
    const MUST_BE_DENIED: &[&str] = &[
        "_sysctl",
        "acct",
        "add_key",
        "bpf",
        "clock_settime",
        "clock_settime64",
        "create_module",
        "delete_module",
        "fanotify_init",
        "finit_module",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "get_kernel_syms",
        "get_mempolicy",
        "init_module",
        "io_uring_enter",
        "io_uring_register",
        "io_uring_setup",
        "ioperm",
        "iopl",
        "kcmp",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mbind",
        "mount",
        "mount_setattr",
        "move_mount",
        "move_pages",
        "nfsservctl",
        "open_by_handle_at",
        "open_tree",
        "perf_event_open",
        "pidfd_getfd",
        "pivot_root",
        "process_madvise",
        "query_module",
        "quotactl",
        "quotactl_fd",
        "reboot",
        "request_key",
        "set_mempolicy",
        "setdomainname",
        "sethostname",
        "setns",
        "settimeofday",
        "stime",
        "swapoff",
        "swapon",
        "syslog",
        "sysfs",
        "umount",
        "umount2",
        "unshare",
        "uselib",
        "userfaultfd",
        "ustat",
        "vhangup",
        "vm86",
        "vm86old",
    ];

    fn rules() -> Vec<LinuxSyscall> {
        docker_default().syscalls().clone().unwrap_or_default()
    }

    fn allowing_rules_for(name: &str) -> Vec<LinuxSyscall> {
        rules()
            .into_iter()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn serializes_with_errno_default_and_x86_architectures() {
        let json = serde_json::to_value(docker_default()).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let syscalls = json["syscalls"].as_array().unwrap();
        assert!(syscalls.len() > 5);
        assert!(syscalls[0]["names"].as_array().unwrap().len() > 300);
        assert_eq!(syscalls[0]["action"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn dangerous_syscalls_are_not_allowed() {
        for name in MUST_BE_DENIED {
            assert!(
                allowing_rules_for(name).is_empty(),
                "{name} must stay denied"
            );
            assert!(!allowed_syscalls().iter().any(|n| n == name), "{name}");
        }
    }

    #[test]
    fn everyday_syscalls_are_allowed() {
        for name in [
            "read",
            "write",
            "openat",
            "epoll_wait",
            "futex",
            "clone",
            "execve",
            "exit_group",
            "mmap",
            "rt_sigaction",
            "socket",
            "connect",
            "accept4",
            "getrandom",
            "statx",
            "close_range",
            "epoll_pwait2",
            "faccessat2",
            "openat2",
            "pidfd_open",
            "pidfd_send_signal",
            "process_mrelease",
            "futex_waitv",
            "landlock_create_ruleset",
            "rseq",
            "arch_prctl",
            "chroot",
            "ptrace",
        ] {
            assert!(
                !allowing_rules_for(name).is_empty(),
                "{name} must be allowed"
            );
        }
    }

    #[test]
    fn clone3_fails_with_enosys_so_libc_falls_back_to_clone() {
        let clone3: Vec<_> = rules()
            .into_iter()
            .filter(|r| r.names().iter().any(|n| n == "clone3"))
            .collect();
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        assert!(clone3[0].args().is_none());
    }

    #[test]
    fn personality_is_limited_to_mobys_personas() {
        let rules = allowing_rules_for("personality");
        let mut values = Vec::new();
        for rule in &rules {
            assert_eq!(rule.names(), &["personality".to_owned()]);
            let args = rule.args().clone().unwrap();
            assert_eq!(args.len(), 1);
            assert_eq!(args[0].index(), 0);
            assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpEq);
            values.push(args[0].value());
        }
        values.sort_unstable();
        assert_eq!(values, [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff]);
    }

    #[test]
    fn clone_may_not_create_namespaces() {
        let rules = allowing_rules_for("clone");
        assert_eq!(rules.len(), 1);
        let args = rules[0].args().clone().unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(args[0].value(), 0x7E02_0000);
        assert_eq!(args[0].value(), 2_114_060_288); // the number in moby's JSON
        assert_eq!(args[0].value_two().unwrap_or(0), 0);
    }

    #[test]
    fn socket_refuses_only_vsock() {
        let rules = allowing_rules_for("socket");
        assert_eq!(rules.len(), 1);
        let args = rules[0].args().clone().unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpNe);
        assert_eq!(args[0].value(), 40);
    }

    #[test]
    fn each_name_has_one_rule_except_argument_alternatives() {
        let mut by_name: BTreeMap<String, Vec<LinuxSyscall>> = BTreeMap::new();
        for rule in rules() {
            let mut seen_in_rule = BTreeSet::new();
            for name in rule.names() {
                assert!(seen_in_rule.insert(name.clone()), "{name} twice in a rule");
                by_name.entry(name.clone()).or_default().push(rule.clone());
            }
        }
        for (name, rules) in by_name {
            if rules.len() > 1 {
                // Only alternatives of the same filtered syscall (personality's personas) may
                // repeat a name: single-name rules with the same action, each with arguments.
                for rule in &rules {
                    assert_eq!(rule.names().len(), 1, "{name} repeated across rules");
                    assert!(rule.args().is_some(), "{name} repeated without a filter");
                    assert_eq!(rule.action(), rules[0].action(), "{name}");
                }
                assert_eq!(name, "personality");
            }
        }
    }

    #[test]
    fn names_are_well_formed_sorted_and_unique() {
        for rule in rules() {
            for name in rule.names() {
                assert!(!name.is_empty());
                assert!(
                    name.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                    "{name}"
                );
            }
        }
        assert!(
            BASE_ALLOW.windows(2).all(|w| w[0] < w[1]),
            "BASE_ALLOW unsorted or duplicated"
        );
        let all = allowed_syscalls();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(all.len(), BASE_ALLOW.len() + 6);
    }
}
