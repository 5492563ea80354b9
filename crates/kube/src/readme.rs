//! The README written beside the manifests.

use std::fmt::Write as _;

use crate::objects::{JWT_KEY, PASSWORD_KEY, USERNAME_KEY, valkey_claim_name};
use crate::render::{CLUSTER_FILE, Note, SECRETS_FILE, VALKEY_FILE};
use crate::spec::DatabaseLayer;

/// The README for these manifests. It names no secret value.
pub(crate) fn text(layer: &DatabaseLayer, included: bool, notes: &[Note]) -> String {
    let mut t = String::new();
    // `write!` into a String cannot fail.
    let _ = write_text(&mut t, layer, included, notes);
    t
}

#[allow(clippy::too_many_lines)] // one document, top to bottom
fn write_text(
    t: &mut String,
    layer: &DatabaseLayer,
    included: bool,
    notes: &[Note],
) -> std::fmt::Result {
    let ns = &layer.namespace;
    let pg = &layer.postgres;
    let vk = &layer.valkey;
    let s = &layer.secrets;
    let db_host = format!("{}-rw.{ns}.svc", pg.name);
    let redis_host = format!("{}.{ns}.svc", vk.name);

    writeln!(
        t,
        "<!-- Written by immich-db (`immich-db render --kubernetes`): change its configuration and render again. -->"
    )?;
    writeln!(t, "# Immich's database layer on Kubernetes\n")?;
    writeln!(
        t,
        "The same layer that immich-db deploys with Podman, for a Kubernetes cluster (k3s and the like), \
         in the namespace `{ns}`:\n"
    )?;
    if included {
        writeln!(
            t,
            "- `{SECRETS_FILE}`: the Secrets, **with their values** (mode 0600). Keep it out of version \
             control, and delete it once applied."
        )?;
    }
    writeln!(
        t,
        "- `{CLUSTER_FILE}`: PostgreSQL as a CloudNativePG `Cluster` named `{}`: {} instance(s) of `{}`, \
         database `{}` owned by `{}`, {} of storage each.",
        pg.name, pg.instances, pg.image, pg.database, pg.owner, pg.storage_size
    )?;
    writeln!(
        t,
        "- `{VALKEY_FILE}`: Valkey (`{}`) as a Deployment with a PersistentVolumeClaim (`{}`, {}) and a \
         Service `{}` on port 6379.",
        vk.image,
        valkey_claim_name(layer),
        vk.storage_size,
        vk.name
    )?;
    writeln!(t)?;
    for note in notes {
        if !matches!(note, Note::SecretsIncluded) {
            writeln!(t, "> **Note:** {note}.\n")?;
        }
    }

    writeln!(t, "## What the cluster needs\n")?;
    writeln!(
        t,
        "- The CloudNativePG operator (these manifests follow its 1.30 `Cluster` schema), installed as its \
         documentation says."
    )?;
    writeln!(
        t,
        "- A default StorageClass, or the one named in the configuration, for the volumes."
    )?;
    writeln!(
        t,
        "- The namespace: `kubectl create namespace {ns}`. (No manifest here creates it, so that deleting \
         these manifests never deletes a namespace with Immich in it.)\n"
    )?;

    writeln!(t, "## The Secrets\n")?;
    writeln!(t, "| Secret | type | keys | used by |")?;
    writeln!(t, "| --- | --- | --- | --- |")?;
    writeln!(
        t,
        "| `{}` | `kubernetes.io/basic-auth` | `{USERNAME_KEY}` (= `{}`), `{PASSWORD_KEY}` | CloudNativePG sets the owner's password from it; Immich's `DB_PASSWORD` |",
        s.postgres_password, pg.owner
    )?;
    if vk.require_password {
        writeln!(
            t,
            "| `{}` | `Opaque` | `{PASSWORD_KEY}` | Valkey's `requirepass`, its health checks; Immich's `REDIS_PASSWORD` |",
            s.redis_password
        )?;
    }
    writeln!(
        t,
        "| `{}` | `Opaque` | `{JWT_KEY}` | Immich's session signing key, where Immich is given one |",
        s.immich_jwt_secret
    )?;
    writeln!(t)?;
    if included {
        writeln!(
            t,
            "`{SECRETS_FILE}` creates them with the values of this host's Podman secrets, so Immich keeps \
             its passwords.\n"
        )?;
    } else {
        writeln!(
            t,
            "No value is written here. Create the Secrets with the values of this host's Podman secrets, so \
             that Immich keeps its passwords. Run this as the user whose podman holds them (the values go \
             through a pipe, into no file and no command line; `printf` is a shell built-in, and the `$(…)` \
             drops the newline that `podman secret inspect` adds):\n"
        )?;
        writeln!(t, "```sh")?;
        writeln!(
            t,
            "printf %s \"$(podman secret inspect --showsecret --format '{{{{.SecretData}}}}' {pgs})\" \\\n  | kubectl -n {ns} create secret generic {pgs} --type=kubernetes.io/basic-auth \\\n      --from-literal={USERNAME_KEY}={owner} --from-file={PASSWORD_KEY}=/dev/stdin",
            pgs = s.postgres_password,
            owner = pg.owner
        )?;
        if vk.require_password {
            writeln!(
                t,
                "printf %s \"$(podman secret inspect --showsecret --format '{{{{.SecretData}}}}' {rs})\" \\\n  | kubectl -n {ns} create secret generic {rs} --from-file={PASSWORD_KEY}=/dev/stdin",
                rs = s.redis_password
            )?;
        }
        writeln!(
            t,
            "printf %s \"$(podman secret inspect --showsecret --format '{{{{.SecretData}}}}' {js})\" \\\n  | kubectl -n {ns} create secret generic {js} --from-file={JWT_KEY}=/dev/stdin",
            js = s.immich_jwt_secret
        )?;
        writeln!(t, "```\n")?;
        writeln!(
            t,
            "(`immich-db render --kubernetes --include-secrets` writes them into `{SECRETS_FILE}` instead, \
             with mode 0600.)\n"
        )?;
    }

    writeln!(t, "## Apply\n")?;
    writeln!(t, "```sh")?;
    writeln!(t, "kubectl apply -f .")?;
    writeln!(
        t,
        "kubectl -n {ns} wait --for=condition=Ready cluster/{} --timeout=15m",
        pg.name
    )?;
    writeln!(t, "kubectl -n {ns} rollout status deployment/{}", vk.name)?;
    writeln!(t, "```\n")?;
    writeln!(
        t,
        "CloudNativePG creates the database, sets the owner's password from `{}` and, once, creates the \
         extensions Immich needs ({}) as a superuser, since Immich's role may not. PostgreSQL loads {} at \
         start.\n",
        s.postgres_password,
        list(&pg.extensions),
        list(&pg.shared_preload_libraries),
    )?;
    writeln!(
        t,
        "Valkey runs as user {uid}, reads its password from the mounted Secret through a pipe (it is in no \
         command line and no environment variable), and has the health checks of the Podman units: a \
         startup probe every second, then readiness and liveness every 30 seconds, 5 seconds to answer, 5 \
         failures in a row before it counts. Each check is a PING that must answer PONG with the password.\n",
        uid = vk.run_as
    )?;
    writeln!(
        t,
        "**Careful:** deleting the `Cluster` (for example with `kubectl delete -f .`) deletes its volumes, \
         and with them the database.\n"
    )?;

    writeln!(t, "## Point Immich at it\n")?;
    writeln!(
        t,
        "In the values of Immich's Helm chart (its shared `env:`, which every Immich component gets), with \
         Immich in the namespace `{ns}` (a Secret can only be read from its own namespace):\n"
    )?;
    writeln!(t, "```yaml")?;
    writeln!(t, "env:")?;
    writeln!(t, "  DB_HOSTNAME: {db_host}")?;
    writeln!(t, "  DB_DATABASE_NAME: {}", pg.database)?;
    writeln!(t, "  DB_USERNAME: {}", pg.owner)?;
    writeln!(t, "  DB_PASSWORD:")?;
    writeln!(t, "    valueFrom:")?;
    writeln!(t, "      secretKeyRef:")?;
    writeln!(t, "        name: {}", s.postgres_password)?;
    writeln!(t, "        key: {PASSWORD_KEY}")?;
    writeln!(t, "  REDIS_HOSTNAME: {redis_host}")?;
    if vk.require_password {
        writeln!(t, "  REDIS_PASSWORD:")?;
        writeln!(t, "    valueFrom:")?;
        writeln!(t, "      secretKeyRef:")?;
        writeln!(t, "        name: {}", s.redis_password)?;
        writeln!(t, "        key: {PASSWORD_KEY}")?;
    }
    writeln!(t, "```\n")?;
    writeln!(
        t,
        "and the chart's own PostgreSQL and Redis turned off, where the chart version still has them.\n"
    )?;

    writeln!(t, "## Move the data over from the Podman host\n")?;
    writeln!(
        t,
        "Two immich-db commands on the Podman host make the move: `immich-db render --kubernetes \
         --output DIR` wrote these files from its configuration, and `immich-db restore --target \
         postgresql://USER@HOST:PORT/DATABASE --password-stdin BACKUP` loads a backup of the Podman \
         database into the cluster's. Step by step:\n"
    )?;
    writeln!(
        t,
        "1. Stop the Immich server on the Podman host, so that nothing writes while you copy."
    )?;
    writeln!(
        t,
        "2. Back the database up there: `immich-db backup` (it says where the backup is)."
    )?;
    writeln!(
        t,
        "3. Create the Secrets with the same values (above) and apply these manifests; wait for the \
         cluster to be ready."
    )?;
    writeln!(
        t,
        "4. Reach the cluster's database from the backup's host, on loopback only: \
         `kubectl -n {ns} port-forward service/{}-rw 15432:5432` (in a second terminal).",
        pg.name
    )?;
    writeln!(
        t,
        "5. Load the backup into it, with the password from the Secret through standard input:\n"
    )?;
    writeln!(t, "   ```sh")?;
    writeln!(
        t,
        "   kubectl -n {ns} get secret {} -o jsonpath='{{.data.{PASSWORD_KEY}}}' | base64 -d \\\n     | immich-db restore --target postgresql://{}@127.0.0.1:15432/{} --password-stdin BACKUP",
        s.postgres_password, pg.owner, pg.database
    )?;
    writeln!(t, "   ```\n")?;
    writeln!(
        t,
        "   It checks the backup's checksum, refuses a database that is not empty (unless `--force`: \
         then everything `{owner}` owns there is dropped first), loads the backup in one transaction \
         with the `pg_restore` of the Podman host's PostgreSQL image (run with the host's network, so \
         that it reaches the port-forward), and counts the relations it finds afterwards. The password \
         is in no command line and no file (`--password-file FILE` reads it from a file instead). \
         Objects are owned by `{owner}`, and comments are left out where `{owner}` is not a superuser \
         (as under CloudNativePG): it may not comment on the extensions the operator created. The \
         cluster's PostgreSQL ({image}) must be as new as the Podman host's: a backup does not load \
         into an older major version.",
        owner = pg.owner,
        image = pg.image,
    )?;
    writeln!(
        t,
        "6. Start Immich on the cluster with the values above. Valkey holds only queues and caches: it \
         starts empty, and nothing of it needs moving.\n"
    )?;
    writeln!(
        t,
        "Before the backup, check the database for the old `vectors` extension (pgvecto.rs): `\\dx` in \
         psql. The image here has VectorChord only. Immich moves its data to VectorChord by itself since \
         version 1.133; once it has, the old extension is no longer used and can be dropped.\n"
    )?;

    writeln!(t, "## What was tested, and what was not\n")?;
    writeln!(
        t,
        "immich-db's tests run `{VALKEY_FILE}` with its Secret under `podman kube play` (Podman implements \
         this part of the Kubernetes API): Valkey refuses a client without the password and answers one \
         with it. The `Cluster` needs the CloudNativePG operator, which cannot run under Podman: it is \
         checked against CloudNativePG 1.30's schema for `Cluster`, and every other object against \
         Kubernetes' own types, but not run. The move is tested as far as one machine allows: a backup \
         of a deployment loaded with `immich-db restore --target` into a second PostgreSQL, started in \
         a container of its own, whose owner is not a superuser and whose extensions were created \
         beforehand, as CloudNativePG sets a database up."
    )?;
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "nothing".to_owned();
    }
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
