//! The container's process: which program runs, with which arguments, environment, user and
//! working directory. An image's config says what it wants; a service or job template may
//! override parts of it. The rules are Kubernetes' (which Cloud Run follows) and, for `USER`,
//! Docker's.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The largest `/etc/passwd` or `/etc/group` read from an image: real ones are a few KiB, and
/// an image must not make the runtime allocate without bound.
const MAX_ACCOUNT_FILE: u64 = 4 * 1024 * 1024;

/// The highest user or group id accepted, as runc does: ids past it are not portable
/// (some kernels and tools treat them as negative), and `u32::MAX` means "unchanged".
const MAX_ID: u32 = i32::MAX as u32;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("the image has no entrypoint or command, and none was given")]
    NoCommand,
    #[error("the program to run (the first element of the command) is an empty string")]
    EmptyProgram,
    #[error("working directory {0:?} is not an absolute path")]
    RelativeWorkingDir(String),
    #[error("invalid user {0:?}: expected user, user:group, uid or uid:gid")]
    InvalidUserSpec(String),
    #[error("{kind} id {id} in user {spec:?} is out of range (0 to {MAX_ID})")]
    IdOutOfRange {
        spec: String,
        kind: &'static str,
        id: String,
    },
    #[error("user {user:?} is not numeric and has no entry in {}", file.display())]
    UnknownUser { user: String, file: PathBuf },
    #[error("group {group:?} is not numeric and has no entry in {}", file.display())]
    UnknownGroup { group: String, file: PathBuf },
    #[error(
        "{} is a symbolic link; refusing to follow it, as it could point outside the \
         container's root filesystem",
        path.display()
    )]
    SymlinkedAccountFile { path: PathBuf },
    #[error("{} is not a regular file", path.display())]
    IrregularAccountFile { path: PathBuf },
    #[error("{} is larger than {MAX_ACCOUNT_FILE} bytes", path.display())]
    AccountFileTooLarge { path: PathBuf },
    #[error("reading {}: {source}", path.display())]
    ReadAccountFile { path: PathBuf, source: io::Error },
}

/// What an image's config says about its process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageProcess {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `K=V` entries, as the image config holds them.
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

impl ImageProcess {
    /// Reads the `config` object of an OCI or Docker image config. Absent, null or mistyped
    /// fields read as empty: images built by many tools leave them out or write `null`.
    pub fn from_config(config: &Value) -> ImageProcess {
        let inner = &config["config"];
        ImageProcess {
            entrypoint: string_list(&inner["Entrypoint"]),
            cmd: string_list(&inner["Cmd"]),
            env: string_list(&inner["Env"]),
            working_dir: inner["WorkingDir"].as_str().unwrap_or_default().to_owned(),
            user: inner["User"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// The entrypoint, where Docker's `ENTRYPOINT [""]` (how a derived image clears its base
    /// image's entrypoint) means none.
    fn effective_entrypoint(&self) -> &[String] {
        match self.entrypoint.as_slice() {
            [only] if only.is_empty() => &[],
            all => all,
        }
    }
}

fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What a service or job template says about the container's process. Its `Debug` shows
/// the environment's names, never its values (secrets come as environment variables).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ContainerOverrides {
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
}

impl std::fmt::Debug for ContainerOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `command` and `args` as given hold `$(VAR)` references, not the values.
        f.debug_struct("ContainerOverrides")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &EnvNames(&self.env))
            .field("working_dir", &self.working_dir)
            .finish()
    }
}

/// An environment in `Debug` output: each name with its value's length, not the value.
pub(crate) struct EnvNames<'a>(pub &'a [(String, String)]);

/// A length in `Debug` output, in place of what is that long.
pub(crate) struct Redacted(pub usize);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl std::fmt::Debug for EnvNames<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(name, value)| (name, Redacted(value.len()))),
            )
            .finish()
    }
}

/// The final argv, by Kubernetes' rules: `command` replaces the image's entrypoint and drops
/// its cmd; `args` replaces the cmd. `$(VAR)` references in `command` and `args` (never in the
/// image's own entrypoint and cmd) are expanded from `env`, the final environment.
///
/// An empty `command` or `args` list counts as not given, as in the Kubernetes API.
pub fn resolve_argv(
    image: &ImageProcess,
    overrides: &ContainerOverrides,
    env: &[(String, String)],
) -> Result<Vec<String>, ProcessError> {
    let vars: HashMap<&str, &str> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let expand_all = |items: &[String]| -> Vec<String> {
        items
            .iter()
            .map(|item| expand(item, |name| vars.get(name).copied()))
            .collect()
    };
    let command = non_empty(&overrides.command);
    let args = non_empty(&overrides.args);
    let argv = match (command, args) {
        (Some(command), Some(args)) => [expand_all(command), expand_all(args)].concat(),
        (Some(command), None) => expand_all(command),
        (None, Some(args)) => [image.effective_entrypoint().to_vec(), expand_all(args)].concat(),
        (None, None) => [image.effective_entrypoint(), image.cmd.as_slice()].concat(),
    };
    match argv.first() {
        None => Err(ProcessError::NoCommand),
        Some(program) if program.is_empty() => Err(ProcessError::EmptyProgram),
        Some(_) => Ok(argv),
    }
}

fn non_empty(list: &Option<Vec<String>>) -> Option<&[String]> {
    list.as_deref().filter(|items| !items.is_empty())
}

/// Expands `$(NAME)` references the way Kubernetes does: `$$` is a literal `$`, a reference
/// to an undefined name stays as written, and a `$` that starts neither (including a `$(`
/// without its `)`) is kept literally.
fn expand<'a>(input: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            rest = escaped;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|inner| inner.split_once(')'))
        {
            match lookup(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            // Kubernetes keeps a lone `$` and goes on scanning right after it, so an
            // unterminated `$(` is literal text too.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment: the image's variables, then the template's overriding them by
/// name, then the platform's (`PORT`, `K_SERVICE`, ...) overriding everything. Each name keeps
/// the position where it first appeared.
///
/// `$(VAR)` in the template's values is expanded, as Kubernetes does, against the variables
/// defined before it (the image's and earlier template entries) and the platform's, which
/// take precedence since they are what the container will finally see.
pub fn merge_env(
    image_env: &[String],
    given: &[(String, String)],
    platform: &[(String, String)],
) -> Vec<(String, String)> {
    let mut merged = EnvList::default();
    for entry in image_env {
        // An entry without `=` has no value to pass; Docker drops those too.
        if let Some((name, value)) = entry.split_once('=') {
            if !name.is_empty() {
                merged.set(name, value.to_owned());
            }
        }
    }
    let platform_value = |name: &str| {
        platform
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    for (name, value) in given {
        let value = expand(value, |var| platform_value(var).or_else(|| merged.get(var)));
        merged.set(name, value);
    }
    for (name, value) in platform {
        merged.set(name, value.clone());
    }
    merged.entries
}

/// An ordered environment where setting an existing name replaces its value in place.
#[derive(Default)]
struct EnvList {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl EnvList {
    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&at| self.entries[at].1.as_str())
    }

    fn set(&mut self, name: &str, value: String) {
        match self.index.get(name) {
            Some(&at) => self.entries[at].1 = value,
            None => {
                self.index.insert(name.to_owned(), self.entries.len());
                self.entries.push((name.to_owned(), value));
            }
        }
    }
}

/// The working directory: the template's, else the image's, else `/`. It must be absolute, as
/// the runtime cannot know what a relative one would be relative to.
pub fn working_dir(
    image: &ImageProcess,
    overrides: &ContainerOverrides,
) -> Result<String, ProcessError> {
    let dir = overrides
        .working_dir
        .as_deref()
        .filter(|dir| !dir.is_empty())
        .or(Some(image.working_dir.as_str()).filter(|dir| !dir.is_empty()))
        .unwrap_or("/");
    if dir.starts_with('/') {
        Ok(dir.to_owned())
    } else {
        Err(ProcessError::RelativeWorkingDir(dir.to_owned()))
    }
}

/// Resolves a Docker `USER` value to `(uid, gid, supplementary gids)` using the image's own
/// `/etc/passwd` and `/etc/group` (never the host's).
///
/// Accepted forms: `""` (root), `uid`, `uid:gid`, `name`, `name:group`, `uid:group`,
/// `name:gid`. A numeric user is always a uid, even if a user has that name, as in Docker. A
/// uid without a passwd entry is fine (gid 0 unless given). When the user has a passwd entry,
/// its primary gid is used unless a group is given, and every group listing the user's name
/// is a supplementary group (even with an explicit group, so that a group meant to restrict
/// the user cannot be shed by naming another).
pub fn resolve_user(user: &str, rootfs: &Path) -> Result<(u32, u32, Vec<u32>), ProcessError> {
    let (user_part, group_part) = split_user_spec(user)?;
    let passwd_path = rootfs.join("etc/passwd");
    let passwd = parse_passwd(&read_account_file(rootfs, "passwd")?);

    // An empty user is root, looked up like "0" so root's groups apply as under Docker.
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let (uid, mut gid, name) = match parse_id(user, "user", user_part)? {
        Some(uid) => match passwd.iter().find(|entry| entry.uid == uid) {
            Some(entry) => (uid, entry.gid, Some(entry.name.as_str())),
            None => (uid, 0, None),
        },
        None => match passwd.iter().find(|entry| entry.name == user_part) {
            Some(entry) => (entry.uid, entry.gid, Some(entry.name.as_str())),
            None => {
                return Err(ProcessError::UnknownUser {
                    user: user_part.to_owned(),
                    file: passwd_path,
                })
            }
        },
    };

    // Without a named user and an explicit group there is nothing to look up in /etc/group.
    if name.is_none() && group_part.is_none() {
        return Ok((uid, gid, Vec::new()));
    }
    let groups = parse_group(&read_account_file(rootfs, "group")?);
    if let Some(group_part) = group_part {
        gid = match parse_id(user, "group", group_part)? {
            Some(gid) => gid,
            None => groups
                .iter()
                .find(|entry| entry.name == group_part)
                .map(|entry| entry.gid)
                .ok_or_else(|| ProcessError::UnknownGroup {
                    group: group_part.to_owned(),
                    file: rootfs.join("etc/group"),
                })?,
        };
    }
    let mut supplementary = Vec::new();
    if let Some(name) = name {
        for entry in groups
            .iter()
            .filter(|entry| entry.members.iter().any(|member| member == name))
        {
            if !supplementary.contains(&entry.gid) {
                supplementary.push(entry.gid);
            }
        }
    }
    Ok((uid, gid, supplementary))
}

/// Splits `user[:group]`; the group is `None` when not given. Empty parts with a colon
/// (`":0"`, `"0:"`) are refused as the typo they most likely are.
fn split_user_spec(spec: &str) -> Result<(&str, Option<&str>), ProcessError> {
    let invalid = || ProcessError::InvalidUserSpec(spec.to_owned());
    match spec.split_once(':') {
        None => Ok((spec, None)),
        Some((user, group)) if user.is_empty() || group.is_empty() || group.contains(':') => {
            Err(invalid())
        }
        Some((user, group)) => Ok((user, Some(group))),
    }
}

/// `Some(id)` if `text` is numeric (within range), `None` if it is a name.
fn parse_id(spec: &str, kind: &'static str, text: &str) -> Result<Option<u32>, ProcessError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    // Only digits here, so a parse failure means the number is too large.
    match text.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id)),
        _ => Err(ProcessError::IdOutOfRange {
            spec: spec.to_owned(),
            kind,
            id: text.to_owned(),
        }),
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines and comments are skipped, as libc
/// does.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    account_lines(text)
        .filter_map(|fields| {
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// `name:password:gid:member,member`; malformed lines and comments are skipped.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    account_lines(text)
        .filter_map(|fields| {
            Some(GroupEntry {
                name: fields.first()?.to_string(),
                gid: fields.get(2)?.parse().ok()?,
                members: fields
                    .get(3)
                    .map(|list| {
                        list.split(',')
                            .map(str::trim)
                            .filter(|member| !member.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn account_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(|fields| fields.first().is_some_and(|name| !name.is_empty()))
}

/// Reads `rootfs/etc/<name>` without following a symlink at `etc` or at the file: the rootfs
/// is the image's, and a link there means something inside the container, not on the host.
/// A missing file reads as empty, as in images built `FROM scratch`.
fn read_account_file(rootfs: &Path, name: &str) -> Result<String, ProcessError> {
    let etc_path = rootfs.join("etc");
    let path = etc_path.join(name);
    let etc = match open_no_follow(None, &etc_path, libc::O_DIRECTORY) {
        Ok(etc) => etc,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(error) => return Err(open_error(etc_path, error)),
    };
    // O_NONBLOCK so that a FIFO planted in the image cannot block the open; reads of a
    // regular file ignore it.
    let file = match open_no_follow(Some(&etc), Path::new(name), libc::O_NONBLOCK) {
        Ok(fd) => File::from(fd),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(error) => return Err(open_error(path, error)),
    };
    let read_error = |source| ProcessError::ReadAccountFile {
        path: path.clone(),
        source,
    };
    if !file.metadata().map_err(read_error)?.is_file() {
        return Err(ProcessError::IrregularAccountFile { path });
    }
    let mut bytes = Vec::new();
    file.take(MAX_ACCOUNT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_ACCOUNT_FILE {
        return Err(ProcessError::AccountFileTooLarge { path });
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Explains a failed no-follow open. The kernel reports a refused symlink as `ELOOP`, or as
/// `ENOTDIR` when a directory was asked for, so ask the file system which it was.
fn open_error(path: PathBuf, source: io::Error) -> ProcessError {
    let is_symlink = std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_symlink());
    if is_symlink {
        ProcessError::SymlinkedAccountFile { path }
    } else {
        ProcessError::ReadAccountFile { path, source }
    }
}

/// Opens `path` read-only (relative to `dir` when given) with `O_NOFOLLOW`, so a symlink as
/// the last component fails.
fn open_no_follow(dir: Option<&OwnedFd>, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let dir_fd = dir.map_or(libc::AT_FDCWD, |dir| dir.as_raw_fd());
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | flags;
    // SAFETY: `c_path` is a valid NUL-terminated string and `dir_fd` is either AT_FDCWD or a
    // descriptor kept open by the borrowed `OwnedFd` for the duration of the call.
    let fd = unsafe { libc::openat(dir_fd, c_path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overrides_debug_names_variables_but_hides_their_values() {
        let o = ContainerOverrides {
            command: Some(vec!["/app".into(), "$(TOKEN)".into()]),
            env: vec![("TOKEN".into(), "hunter2".into())],
            ..Default::default()
        };
        let debug = format!("{o:?}");
        assert!(
            debug.contains("TOKEN") && debug.contains("<7 bytes>"),
            "{debug}"
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageProcess {
        ImageProcess {
            entrypoint: strings(entrypoint),
            cmd: strings(cmd),
            ..ImageProcess::default()
        }
    }

    fn overrides(command: Option<&[&str]>, args: Option<&[&str]>) -> ContainerOverrides {
        ContainerOverrides {
            command: command.map(strings),
            args: args.map(strings),
            ..ContainerOverrides::default()
        }
    }

    fn argv(image: &ImageProcess, overrides: &ContainerOverrides) -> Vec<String> {
        resolve_argv(image, overrides, &[]).expect("argv resolves")
    }

    #[test]
    fn from_config_reads_fields() {
        let config = json!({
            "architecture": "amd64",
            "config": {
                "Entrypoint": ["/bin/server"],
                "Cmd": ["--port", "8080"],
                "Env": ["PATH=/usr/bin", "A=b=c"],
                "WorkingDir": "/srv",
                "User": "app:app"
            }
        });
        let process = ImageProcess::from_config(&config);
        assert_eq!(process.entrypoint, strings(&["/bin/server"]));
        assert_eq!(process.cmd, strings(&["--port", "8080"]));
        assert_eq!(process.env, strings(&["PATH=/usr/bin", "A=b=c"]));
        assert_eq!(process.working_dir, "/srv");
        assert_eq!(process.user, "app:app");
    }

    #[test]
    fn from_config_absent_and_null_fields_are_empty() {
        let config = json!({"config": {"Entrypoint": null, "Cmd": ["/hello"], "Env": null}});
        let process = ImageProcess::from_config(&config);
        assert_eq!(process, image(&[], &["/hello"]));
        assert_eq!(
            ImageProcess::from_config(&json!({})),
            ImageProcess::default()
        );
        assert_eq!(
            ImageProcess::from_config(&json!({"config": null})),
            ImageProcess::default()
        );
    }

    #[test]
    fn neither_command_nor_args_uses_entrypoint_and_cmd() {
        let image = image(&["/entry", "-x"], &["cmd1", "cmd2"]);
        assert_eq!(
            argv(&image, &overrides(None, None)),
            strings(&["/entry", "-x", "cmd1", "cmd2"])
        );
    }

    #[test]
    fn command_only_replaces_entrypoint_and_drops_cmd() {
        let image = image(&["/entry"], &["cmd1"]);
        assert_eq!(
            argv(&image, &overrides(Some(&["/bin/sh", "-c", "date"]), None)),
            strings(&["/bin/sh", "-c", "date"])
        );
    }

    #[test]
    fn args_only_replaces_cmd() {
        let image = image(&["/entry"], &["cmd1"]);
        assert_eq!(
            argv(&image, &overrides(None, Some(&["a1", "a2"]))),
            strings(&["/entry", "a1", "a2"])
        );
    }

    #[test]
    fn command_and_args_replace_both() {
        let image = image(&["/entry"], &["cmd1"]);
        assert_eq!(
            argv(&image, &overrides(Some(&["/bin/echo"]), Some(&["hi"]))),
            strings(&["/bin/echo", "hi"])
        );
    }

    #[test]
    fn empty_lists_count_as_not_given() {
        let image = image(&["/entry"], &["cmd1"]);
        assert_eq!(
            argv(&image, &overrides(Some(&[]), Some(&[]))),
            strings(&["/entry", "cmd1"])
        );
    }

    #[test]
    fn entrypoint_of_one_empty_string_means_none() {
        let image = image(&[""], &["/bin/app"]);
        assert_eq!(argv(&image, &overrides(None, None)), strings(&["/bin/app"]));
    }

    #[test]
    fn empty_argv_is_an_error() {
        let error =
            resolve_argv(&image(&[], &[]), &overrides(None, None), &[]).expect_err("no command");
        assert!(matches!(error, ProcessError::NoCommand));
        assert_eq!(
            error.to_string(),
            "the image has no entrypoint or command, and none was given"
        );
        // Args alone, with no image entrypoint, are the whole argv.
        assert_eq!(
            argv(&image(&[], &["x"]), &overrides(None, Some(&["/bin/true"]))),
            strings(&["/bin/true"])
        );
    }

    #[test]
    fn empty_program_is_an_error() {
        let error = resolve_argv(&image(&[], &["", "x"]), &overrides(None, None), &[])
            .expect_err("empty program");
        assert!(matches!(error, ProcessError::EmptyProgram));
    }

    #[test]
    fn references_expand_in_command_and_args_only() {
        let env = pairs(&[("NAME", "world"), ("PORT", "8080")]);
        let image = image(&["/entry", "$(NAME)"], &[]);
        let resolved = resolve_argv(
            &image,
            &overrides(None, Some(&["--port=$(PORT)", "hello $(NAME)!"])),
            &env,
        )
        .expect("argv resolves");
        // The image's own entrypoint is not expanded, as in Kubernetes.
        assert_eq!(
            resolved,
            strings(&["/entry", "$(NAME)", "--port=8080", "hello world!"])
        );
        let resolved =
            resolve_argv(&image, &overrides(Some(&["/bin/$(NAME)"]), None), &env).expect("ok");
        assert_eq!(resolved, strings(&["/bin/world"]));
    }

    #[test]
    fn expansion_rules() {
        let env: HashMap<&str, &str> = [("A", "1"), ("B", "2"), ("EMPTY", "")].into();
        let expand = |input: &str| expand(input, |name| env.get(name).copied());
        assert_eq!(expand("$(A)"), "1");
        assert_eq!(expand("$$(A)"), "$(A)");
        assert_eq!(expand("$$$(A)"), "$1");
        assert_eq!(expand("$$"), "$");
        assert_eq!(expand("$(NOPE)"), "$(NOPE)");
        assert_eq!(expand("$(A)$(B)"), "12");
        assert_eq!(expand("x$(A)y$(NOPE)z$(B)"), "x1y$(NOPE)z2");
        assert_eq!(expand("$(EMPTY)!"), "!");
        assert_eq!(expand("$(A"), "$(A");
        assert_eq!(expand("$(A $(B)"), "$(A $(B)");
        assert_eq!(expand("$A"), "$A");
        assert_eq!(expand("cost: 5$"), "cost: 5$");
        assert_eq!(expand("$()"), "$()");
        assert_eq!(expand("héllo $(A) wörld"), "héllo 1 wörld");
    }

    #[test]
    fn merge_env_order_and_overrides() {
        let image_env = strings(&["PATH=/usr/bin", "LANG=C", "BROKEN", "=nameless", "PORT=1"]);
        let given = pairs(&[("LANG", "en_US"), ("APP", "x"), ("PORT", "2")]);
        let platform = pairs(&[("PORT", "8080"), ("K_SERVICE", "hello")]);
        assert_eq!(
            merge_env(&image_env, &given, &platform),
            pairs(&[
                ("PATH", "/usr/bin"),
                ("LANG", "en_US"),
                ("PORT", "8080"),
                ("APP", "x"),
                ("K_SERVICE", "hello"),
            ])
        );
    }

    #[test]
    fn merge_env_later_duplicates_win_in_place() {
        let image_env = strings(&["A=1", "B=2", "A=3"]);
        let given = pairs(&[("C", "x"), ("C", "y")]);
        assert_eq!(
            merge_env(&image_env, &given, &[]),
            pairs(&[("A", "3"), ("B", "2"), ("C", "y")])
        );
    }

    #[test]
    fn merge_env_expands_given_values() {
        let image_env = strings(&["PATH=/usr/bin"]);
        let given = pairs(&[
            ("PATH", "/app/bin:$(PATH)"),
            ("HOST", "example.com"),
            ("URL", "http://$(HOST):$(PORT)/$(LATER)"),
            ("LATER", "x"),
            ("LITERAL", "$$(HOST)"),
        ]);
        let platform = pairs(&[("PORT", "8080")]);
        assert_eq!(
            merge_env(&image_env, &given, &platform),
            pairs(&[
                ("PATH", "/app/bin:/usr/bin"),
                ("HOST", "example.com"),
                ("URL", "http://example.com:8080/$(LATER)"),
                ("LATER", "x"),
                ("LITERAL", "$(HOST)"),
                ("PORT", "8080"),
            ])
        );
    }

    #[test]
    fn merge_env_does_not_expand_image_or_platform_values() {
        let image_env = strings(&["A=$(B)", "B=1"]);
        let platform = pairs(&[("P", "$(B)")]);
        assert_eq!(
            merge_env(&image_env, &[], &platform),
            pairs(&[("A", "$(B)"), ("B", "1"), ("P", "$(B)")])
        );
    }

    #[test]
    fn working_dir_rules() {
        let mut image = ImageProcess::default();
        let mut overrides = ContainerOverrides::default();
        assert_eq!(working_dir(&image, &overrides).expect("ok"), "/");
        image.working_dir = "/srv".into();
        assert_eq!(working_dir(&image, &overrides).expect("ok"), "/srv");
        overrides.working_dir = Some(String::new());
        assert_eq!(working_dir(&image, &overrides).expect("ok"), "/srv");
        overrides.working_dir = Some("/app".into());
        assert_eq!(working_dir(&image, &overrides).expect("ok"), "/app");
        overrides.working_dir = Some("app".into());
        let error = working_dir(&image, &overrides).expect_err("relative");
        assert!(matches!(error, ProcessError::RelativeWorkingDir(ref dir) if dir == "app"));
        overrides.working_dir = None;
        image.working_dir = "srv".into();
        assert!(working_dir(&image, &overrides).is_err());
    }

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment

daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1001:App:/home/app:/bin/sh
broken line
123:x:4242:4243::/:/bin/sh
";

    const GROUP: &str = "\
root:x:0:root
bin:x:1:root,daemon
wheel:x:10:root, app
appgroup:x:1001:
staff:x:50:app
audio:x:63:other
staff-dup:x:50:app
";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("mkdir etc");
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).expect("write passwd");
        std::fs::write(dir.path().join("etc/group"), GROUP).expect("write group");
        dir
    }

    #[test]
    fn user_empty_is_root_with_roots_groups() {
        let root = rootfs();
        assert_eq!(
            resolve_user("", root.path()).expect("ok"),
            (0, 0, vec![0, 1, 10])
        );
        let empty = tempfile::tempdir().expect("tempdir");
        assert_eq!(resolve_user("", empty.path()).expect("ok"), (0, 0, vec![]));
    }

    #[test]
    fn user_by_name() {
        let root = rootfs();
        assert_eq!(
            resolve_user("app", root.path()).expect("ok"),
            (1000, 1001, vec![10, 50])
        );
        assert_eq!(
            resolve_user("daemon", root.path()).expect("ok"),
            (1, 1, vec![1])
        );
    }

    #[test]
    fn user_by_number() {
        let root = rootfs();
        // A uid with a passwd entry takes that entry's gid and groups.
        assert_eq!(
            resolve_user("1000", root.path()).expect("ok"),
            (1000, 1001, vec![10, 50])
        );
        // A uid without one is fine: gid 0, no groups.
        assert_eq!(
            resolve_user("5000", root.path()).expect("ok"),
            (5000, 0, vec![])
        );
        assert_eq!(
            resolve_user("5000:6000", root.path()).expect("ok"),
            (5000, 6000, vec![])
        );
        // A numeric user is a uid even when a user has that name.
        assert_eq!(
            resolve_user("123", root.path()).expect("ok"),
            (123, 0, vec![])
        );
    }

    #[test]
    fn user_with_group() {
        let root = rootfs();
        assert_eq!(
            resolve_user("app:staff", root.path()).expect("ok"),
            (1000, 50, vec![10, 50])
        );
        assert_eq!(
            resolve_user("app:7", root.path()).expect("ok"),
            (1000, 7, vec![10, 50])
        );
        assert_eq!(
            resolve_user("5000:wheel", root.path()).expect("ok"),
            (5000, 10, vec![])
        );
        assert_eq!(
            resolve_user("1000:0", root.path()).expect("ok"),
            (1000, 0, vec![10, 50])
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let root = rootfs();
        let error = resolve_user("nobody", root.path()).expect_err("unknown user");
        assert!(matches!(error, ProcessError::UnknownUser { ref user, .. } if user == "nobody"));
        let message = error.to_string();
        assert!(message.contains("\"nobody\""), "{message}");
        assert!(message.contains("etc/passwd"), "{message}");

        let error = resolve_user("app:nogroup", root.path()).expect_err("unknown group");
        let message = error.to_string();
        assert!(message.contains("\"nogroup\""), "{message}");
        assert!(message.contains("etc/group"), "{message}");

        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            resolve_user("app", empty.path()),
            Err(ProcessError::UnknownUser { .. })
        ));
    }

    #[test]
    fn malformed_user_specs_are_errors() {
        let root = rootfs();
        for spec in [":", "app:", ":0", "a:b:c"] {
            assert!(
                matches!(
                    resolve_user(spec, root.path()),
                    Err(ProcessError::InvalidUserSpec(_))
                ),
                "{spec}"
            );
        }
        for spec in [
            "4294967295",
            "2147483648",
            "99999999999999999999999",
            "0:4294967296",
        ] {
            assert!(
                matches!(
                    resolve_user(spec, root.path()),
                    Err(ProcessError::IdOutOfRange { .. })
                ),
                "{spec}"
            );
        }
    }

    #[test]
    fn symlinked_passwd_is_refused() {
        let root = rootfs();
        let host = tempfile::tempdir().expect("tempdir");
        std::fs::write(host.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").expect("write");
        std::fs::remove_file(root.path().join("etc/passwd")).expect("rm");
        std::os::unix::fs::symlink(host.path().join("passwd"), root.path().join("etc/passwd"))
            .expect("symlink");
        let error = resolve_user("evil", root.path()).expect_err("symlink refused");
        assert!(
            matches!(error, ProcessError::SymlinkedAccountFile { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("symbolic link"), "{error}");
    }

    #[test]
    fn symlinked_etc_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let host = tempfile::tempdir().expect("tempdir");
        std::fs::write(host.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").expect("write");
        std::os::unix::fs::symlink(host.path(), root.path().join("etc")).expect("symlink");
        let error = resolve_user("evil", root.path()).expect_err("symlink refused");
        assert!(
            matches!(error, ProcessError::SymlinkedAccountFile { .. }),
            "{error}"
        );
    }

    #[test]
    fn irregular_passwd_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("etc/passwd")).expect("mkdir");
        assert!(matches!(
            resolve_user("app", root.path()),
            Err(ProcessError::IrregularAccountFile { .. })
        ));
    }
}
