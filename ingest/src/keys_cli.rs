//! `ringcast-ingest keys …`: the operator makes, lists and revokes API keys in the config's
//! Redis, then the binary exits (no server starts).
//!
//! - `create --owner ID --role admin|uploader|viewer [--label TEXT] [--json]`: prints the new
//!   token once (it is stored only as a hash) with its key id.
//! - `list [--owner ID] [--json]`: key id, owner, role, label, created, revoked; never tokens.
//! - `revoke KEY_ID`: the key authenticates nobody from the next request on (idempotent; an
//!   unknown id is an error).
//!
//! Rendering is pure and unit-tested here; the Redis side is
//! `ringcast_infra::platform::api_keys`.

use ringcast_infra::platform::api_keys::{ApiKeyRecord, ApiKeys, Revoked};
use ringcast_infra::queue::{Queue, QueueError};
use ringcast_proto::auth::{is_valid_owner, Role};
use ringcast_proto::live::format_rfc3339_millis;
use serde_json::json;

/// Longest label kept with a key.
const MAX_LABEL: usize = 200;

/// The `keys` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// Make a key; its token is printed once and stored only as a hash.
    Create {
        /// The owner (account id, 1-64 characters of [A-Za-z0-9_-]) the key acts for.
        #[arg(long)]
        owner: String,
        /// admin (everything, any owner), uploader (upload and manage the owner's videos) or
        /// viewer (read the owner's videos).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A note for humans (who or what uses the key).
        #[arg(long, default_value = "")]
        label: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every key (never its token), oldest first.
    List {
        /// Only this owner's keys.
        #[arg(long)]
        owner: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id (the part after `rck_`, before the second `_`).
    Revoke { key_id: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: admin, uploader or viewer"))
}

/// Why a `keys` command failed.
#[derive(Debug, thiserror::Error)]
pub enum KeysCliError {
    #[error("{0}")]
    Invalid(String),
    #[error("no key with id {0:?}")]
    NoSuchKey(String),
    #[error(transparent)]
    Redis(#[from] QueueError),
}

/// Run `cmd` against the Redis of `queue`; the text to print.
pub async fn run(cmd: &KeysCommand, queue: &Queue) -> Result<String, KeysCliError> {
    let keys = ApiKeys::new(queue);
    match cmd {
        KeysCommand::Create {
            owner,
            role,
            label,
            json,
        } => {
            if !is_valid_owner(owner) {
                return Err(KeysCliError::Invalid(format!(
                    "owner {owner:?} must be 1-64 characters of [A-Za-z0-9_-]"
                )));
            }
            if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
                return Err(KeysCliError::Invalid(format!(
                    "the label must be at most {MAX_LABEL} printable characters"
                )));
            }
            let (record, token) = keys.create(owner, *role, label).await?;
            Ok(render_created(&record, &token, *json))
        }
        KeysCommand::List { owner, json } => {
            let records = keys.list(owner.as_deref()).await?;
            Ok(if *json {
                render_list_json(&records)
            } else {
                render_table(&records)
            })
        }
        KeysCommand::Revoke { key_id } => match keys.revoke(key_id).await? {
            Revoked::Now => Ok(format!("revoked {key_id}")),
            Revoked::Already => Ok(format!("{key_id} was already revoked")),
            Revoked::NoSuchKey => Err(KeysCliError::NoSuchKey(key_id.clone())),
        },
    }
}

fn render_created(record: &ApiKeyRecord, token: &str, json: bool) -> String {
    if json {
        let mut v = serde_json::to_value(record).unwrap_or_default();
        v["token"] = json!(token);
        return v.to_string();
    }
    format!(
        "key id: {}\nowner:  {}\nrole:   {}\ntoken:  {token}\n\nThe token is shown only now; \
         clients send it as `Authorization: Bearer {token}`.",
        record.key_id, record.owner, record.role
    )
}

fn render_list_json(records: &[ApiKeyRecord]) -> String {
    serde_json::to_string_pretty(records).unwrap_or_default()
}

fn render_table(records: &[ApiKeyRecord]) -> String {
    if records.is_empty() {
        return "no keys".to_string();
    }
    let mut out = format!(
        "{:<12}  {:<20}  {:<8}  {:<24}  {:<24}  label\n",
        "key id", "owner", "role", "created", "revoked"
    );
    for r in records {
        let revoked = r.revoked_ms.map(format_rfc3339_millis).unwrap_or_default();
        out.push_str(&format!(
            "{:<12}  {:<20}  {:<8}  {:<24}  {:<24}  {}\n",
            r.key_id,
            r.owner,
            r.role.as_str(),
            format_rfc3339_millis(r.created_ms),
            revoked,
            r.label
        ));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: KeysCommand,
    }

    #[test]
    fn commands_parse() {
        let t = T::try_parse_from(["t", "create", "--owner", "alice", "--role", "viewer"])
            .expect("parse");
        assert!(matches!(
            t.cmd,
            KeysCommand::Create {
                role: Role::Viewer,
                ..
            }
        ));
        assert!(T::try_parse_from(["t", "create", "--owner", "a", "--role", "root"]).is_err());
        assert!(T::try_parse_from(["t", "create", "--role", "admin"]).is_err());
        let t = T::try_parse_from(["t", "revoke", "abc"]).expect("parse");
        assert!(matches!(t.cmd, KeysCommand::Revoke { key_id } if key_id == "abc"));
    }

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(render_table(&[]), "no keys");
        assert_eq!(render_list_json(&[]), "[]");
    }
}
