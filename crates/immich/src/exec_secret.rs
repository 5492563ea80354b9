//! Commands run in a container with a password: the password travels on the
//! command's standard input, and a shell in the container reads it into the one
//! variable the client reads (`PGPASSWORD`, `REDISCLI_AUTH`). So it is in no
//! process's arguments, and not in the environment that podman writes to a file
//! (`exec-process-*` in the container's directory) for every command it runs.

use homelab_podman::ExecSpec;
use homelab_secrets::SecretValue;

/// `script`, run by `sh -c` in the container once the first line of standard
/// input is in the exported `variable`; `args` are the script's `$1`, `$2`, ...
pub(crate) fn with_secret(
    variable: &str,
    script: &str,
    args: &[&str],
    secret: &SecretValue,
) -> ExecSpec {
    let script = format!("IFS= read -r {variable} && export {variable} && {script}");
    let mut command = vec!["sh".to_owned(), "-c".to_owned(), script, "sh".to_owned()];
    command.extend(args.iter().map(|a| (*a).to_owned()));
    ExecSpec::new(command).stdin(line(secret))
}

/// `psql` logging in over TCP (`127.0.0.1` in the container, as Immich logs in
/// over the network) as `user` to `database` with `password`, running `sql`;
/// rows unaligned, one per line.
pub(crate) fn psql_over_tcp(
    user: &str,
    database: &str,
    sql: &str,
    password: &SecretValue,
) -> ExecSpec {
    with_secret(
        "PGPASSWORD",
        "exec psql -X -w -h 127.0.0.1 -U \"$1\" -d \"$2\" -Atc \"$3\"",
        &[user, database, sql],
        password,
    )
}

/// `valkey-cli ping` with `password`.
pub(crate) fn valkey_ping(password: &SecretValue) -> ExecSpec {
    with_secret(
        "REDISCLI_AUTH",
        "exec valkey-cli --no-auth-warning ping",
        &[],
        password,
    )
}

/// `valkey-cli ping` without any password, even one in the container's
/// environment.
pub(crate) fn valkey_ping_without_password() -> ExecSpec {
    ExecSpec::new(["env", "-u", "REDISCLI_AUTH", "valkey-cli", "ping"])
}

/// `value` followed by a newline, for the shell's `read`.
fn line(value: &SecretValue) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(value.len() + 1);
    bytes.extend_from_slice(value.expose());
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_only_on_standard_input() {
        let password = SecretValue::new("s3cr3t-Value");
        for spec in [
            psql_over_tcp("immich", "immich", "SELECT 1", &password),
            valkey_ping(&password),
        ] {
            let args = spec.command().join(" ");
            assert!(!args.contains("s3cr3t"), "{args}");
            assert_eq!(spec.env_vars().count(), 0);
            assert_eq!(spec.stdin_bytes(), Some(&b"s3cr3t-Value\n"[..]));
        }
    }

    #[test]
    fn arguments_are_positional_not_spliced_into_the_script() {
        let spec = psql_over_tcp("im'mich", "db", "SELECT 'x'", &SecretValue::new("p"));
        let command = spec.command();
        assert_eq!(command[..2], ["sh", "-c"]);
        assert!(!command[2].contains("im'mich"), "{}", command[2]);
        assert_eq!(command[3..], ["sh", "im'mich", "db", "SELECT 'x'"]);
    }
}
