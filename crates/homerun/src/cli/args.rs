//! Flag values as gcloud reads them: comma-separated lists and `K=V` dictionaries (with
//! gcloud's `^DELIM^` escape for values holding commas), env var flags, durations, and
//! counts that may be `default`.

use anyhow::{bail, Context};
use clap::Args;

use api::EnvVar;

/// Splits a gcloud list value: `a,b,c`, or `^:^a,1:b` with another delimiter. An empty
/// value is the empty list.
pub fn split_list(value: &str) -> Vec<String> {
    let (delimiter, rest) = match value.strip_prefix('^').and_then(|v| v.split_once('^')) {
        Some((d, rest)) if !d.is_empty() => (d.to_string(), rest),
        _ => (",".to_string(), value),
    };
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(delimiter.as_str()).map(str::to_string).collect()
}

/// Parses `K=V,K2=V2` (see [`split_list`]) into pairs, in order. `flag` names the flag in
/// errors.
pub fn parse_dict(value: &str, flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    split_list(value)
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{flag}: \"{item}\" is not KEY=VALUE"),
        })
        .collect()
}

/// The env var flags of a container (`--set-env-vars`, `--update-env-vars`,
/// `--remove-env-vars`, `--clear-env-vars`). They change `env` in gcloud's order: clear
/// or set first, then removals, then updates (a name updated keeps its place, a new one
/// is added). Only env vars with a value are theirs: those set from secrets are the
/// secrets flags' (see [`super::secret_flags`], which applies both).
#[derive(Args, Debug, Clone, Default)]
pub struct EnvArgs {
    /// KEY=VALUE,...: the env vars, replacing all others (but those from secrets).
    #[arg(long, conflicts_with = "clear_env_vars")]
    pub set_env_vars: Option<String>,
    /// KEY=VALUE,...: env vars set or changed, the others kept.
    #[arg(long, conflicts_with = "set_env_vars")]
    pub update_env_vars: Option<String>,
    /// KEY,...: env vars removed.
    #[arg(long, conflicts_with = "set_env_vars")]
    pub remove_env_vars: Option<String>,
    /// Remove every env var (but those from secrets).
    #[arg(long)]
    pub clear_env_vars: bool,
}

impl EnvArgs {
    /// The clearing and removals: `--clear-env-vars`, `--set-env-vars` (all the others
    /// go), `--remove-env-vars`.
    pub fn prune(&self, env: &mut Vec<EnvVar>) {
        if self.clear_env_vars || self.set_env_vars.is_some() {
            env.retain(is_secret_env);
        }
        if let Some(remove) = &self.remove_env_vars {
            let names = split_list(remove);
            env.retain(|e| is_secret_env(e) || !names.contains(&e.name));
        }
    }

    /// The additions: `--set-env-vars`, then `--update-env-vars`. A name set from a
    /// secret is refused (as gcloud does: one name, one kind).
    pub fn add(&self, env: &mut Vec<EnvVar>) -> anyhow::Result<()> {
        let mut changes = Vec::new();
        if let Some(set) = &self.set_env_vars {
            changes.extend(parse_dict(set, "--set-env-vars")?);
        }
        if let Some(update) = &self.update_env_vars {
            changes.extend(parse_dict(update, "--update-env-vars")?);
        }
        for (k, v) in changes {
            match env.iter_mut().find(|e| e.name == k) {
                Some(e) if is_secret_env(e) => bail!(
                    "env var [{k}] is set from a secret: remove it with --remove-secrets={k} to give it a value"
                ),
                Some(e) => *e = EnvVar::new(k, v),
                None => env.push(EnvVar::new(k, v)),
            }
        }
        Ok(())
    }
}

/// Whether an env var takes its value from a secret (`valueSource`).
pub fn is_secret_env(e: &EnvVar) -> bool {
    e.value.is_none() && e.value_source.is_some()
}

/// A duration as gcloud's `--timeout` takes it: seconds (`300`), or with a unit
/// (`300s`, `5m`, `1h`, `1h30m`).
pub fn parse_duration_secs(value: &str, flag: &str) -> anyhow::Result<i64> {
    let v = value.trim();
    if let Ok(n) = v.parse::<i64>() {
        if n < 0 {
            bail!("{flag}: must not be negative");
        }
        return Ok(n);
    }
    let mut total = 0i64;
    let mut digits = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => bail!("{flag}: \"{value}\" is not a duration (like 300, 300s, 5m or 1h)"),
        };
        let n: i64 = digits.parse().with_context(|| {
            format!("{flag}: \"{value}\" is not a duration (like 300, 300s, 5m or 1h)")
        })?;
        total += n * unit;
        digits.clear();
    }
    if !digits.is_empty() || v.is_empty() {
        bail!("{flag}: \"{value}\" is not a duration (like 300, 300s, 5m or 1h)");
    }
    Ok(total)
}

/// A count that may be `default` (0: the platform's default).
pub fn parse_count(value: &str, flag: &str) -> anyhow::Result<i32> {
    if value.eq_ignore_ascii_case("default") {
        return Ok(0);
    }
    match value.trim().parse::<i32>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => bail!("{flag}: \"{value}\" is not a count (a whole number, or \"default\")"),
    }
}

/// `true`/`false` as annotations write them (also `yes`/`no`, `1`/`0`).
pub fn parse_bool(value: &str, what: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => bail!("{what}: \"{value}\" is not true or false"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_dicts() {
        assert_eq!(split_list("a,b"), ["a", "b"]);
        assert!(split_list("").is_empty());
        assert_eq!(split_list("^:^a,b:c"), ["a,b", "c"]);
        assert_eq!(
            parse_dict("A=1,B=x=y", "--set-env-vars").unwrap(),
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(
            parse_dict("^;^LIST=a,b;E=", "--set-env-vars").unwrap(),
            [("LIST".into(), "a,b".into()), ("E".into(), "".into())]
        );
        assert!(parse_dict("NOVALUE", "--set-env-vars").is_err());
    }

    #[test]
    fn durations_and_counts() {
        assert_eq!(parse_duration_secs("300", "--timeout").unwrap(), 300);
        assert_eq!(parse_duration_secs("45s", "--timeout").unwrap(), 45);
        assert_eq!(parse_duration_secs("1h30m", "--timeout").unwrap(), 5400);
        assert!(parse_duration_secs("5x", "--timeout").is_err());
        assert!(parse_duration_secs("m", "--timeout").is_err());
        assert!(parse_duration_secs("5m3", "--timeout").is_err());
        assert_eq!(parse_count("default", "--max-instances").unwrap(), 0);
        assert_eq!(parse_count("3", "--max-instances").unwrap(), 3);
        assert!(parse_count("-1", "--max-instances").is_err());
    }
}
