//! Backups of a store: one zip file holding `manifest.json` and `seal.duckdb`, a consistent copy
//! of the store as one transaction saw it (so it can be taken while a server runs and jobs
//! write). The manifest names the seal version and schema version that wrote it, the copy's
//! size and SHA-256, and the rows of every table; `verify` checks all of it, and `restore` puts a
//! verified copy in place of an empty data dir's store.
//!
//! What a backup does not hold: model folders (registered by path; back them up with the
//! models), downloads (fetched again when needed) and search indexes (rebuilt from the store).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::DataDir;
use crate::store::Store;

/// The version of the backup layout.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const STORE: &str = "seal.duckdb";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The seal that wrote it.
    pub seal_version: String,
    pub schema_version: u32,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub store_bytes: u64,
    pub store_sha256: String,
    /// Rows of every table of the copy.
    pub tables: BTreeMap<String, u64>,
}

/// Writes a backup of `store` to `out` (replaced only once the backup is whole).
pub fn create(store: &Store, out: &Path) -> Result<Manifest> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".seal-backup-")
        .tempdir_in(dir)
        .with_context(|| format!("{}", dir.display()))?;
    let copy = work.path().join(STORE);
    store.snapshot_to(&copy)?;
    let (schema_version, tables) = {
        let opened = Store::open(&copy)?;
        (opened.schema_version()?, opened.table_counts()?)
    };
    let (store_bytes, store_sha256) = digest(&mut std::fs::File::open(&copy)?)?;
    let manifest = Manifest {
        format: FORMAT,
        seal_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version,
        created_at: super::accounts::rfc3339(crate::store::unix_now()),
        store_bytes,
        store_sha256,
        tables,
    };
    let part = work.path().join("backup.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&part)?);
        let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(MANIFEST, deflated)?;
        zip.write_all(&serde_json::to_vec_pretty(&manifest)?)?;
        // The store is written as it is: large, and DuckDB compresses its own blocks.
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(store_bytes >= u32::MAX as u64);
        zip.start_file(STORE, stored)?;
        std::io::copy(&mut std::fs::File::open(&copy)?, &mut zip)?;
        zip.finish()?.sync_all()?;
    }
    std::fs::rename(&part, out).with_context(|| format!("{}", out.display()))?;
    Ok(manifest)
}

fn digest(r: &mut impl Read) -> Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let n = std::io::copy(r, &mut hasher)?;
    Ok((n, hex::encode(hasher.finalize())))
}

/// Checks a backup: its layout, the copy's size and SHA-256, and that the copy opens with a
/// schema this seal knows and holds the rows the manifest lists. Returns its manifest.
pub fn verify(file: &Path) -> Result<Manifest> {
    let work = tempfile::tempdir()?;
    extract_verified(file, work.path())
}

/// [`verify`], leaving the checked copy at `dir/seal.duckdb`.
fn extract_verified(file: &Path, dir: &Path) -> Result<Manifest> {
    let shown = file.display();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(file).with_context(|| format!("{shown}"))?)
        .with_context(|| format!("{shown}: not a seal backup (not a zip file)"))?;
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort();
    if names != [MANIFEST, STORE] {
        bail!("{shown}: a seal backup holds {MANIFEST} and {STORE}, this one {names:?}");
    }
    let manifest: Manifest = {
        let mut text = String::new();
        zip.by_name(MANIFEST)?.read_to_string(&mut text)?;
        serde_json::from_str(&text).with_context(|| format!("{shown}: {MANIFEST}"))?
    };
    if manifest.format != FORMAT {
        bail!("{shown}: backup format {} (this seal reads format {FORMAT})", manifest.format);
    }
    let copy = dir.join(STORE);
    {
        let mut entry = zip.by_name(STORE)?;
        let mut out = std::fs::File::create(&copy)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let got = entry.read(&mut buf).with_context(|| format!("{shown}: reading {STORE}"))?;
            if got == 0 {
                break;
            }
            hasher.update(&buf[..got]);
            out.write_all(&buf[..got])?;
            n += got as u64;
        }
        out.sync_all()?;
        let sha = hex::encode(hasher.finalize());
        if (n, sha.as_str()) != (manifest.store_bytes, manifest.store_sha256.as_str()) {
            bail!(
                "{shown}: {STORE} is damaged: {n} bytes with SHA-256 {sha}, the manifest says {} bytes with {}",
                manifest.store_bytes,
                manifest.store_sha256
            );
        }
    }
    // The copy opens (a newer schema is refused, naming both versions) and holds what it should.
    let opened = Store::open(&copy).with_context(|| format!("{shown}: the store in it"))?;
    let tables = opened.table_counts()?;
    for (table, rows) in &manifest.tables {
        let found = tables.get(table).copied();
        if found != Some(*rows) {
            bail!("{shown}: table {table} has {found:?} rows, the manifest says {rows}");
        }
    }
    Ok(manifest)
}

/// Restores a backup as the store of `data`. The data dir must be empty (or absent) unless
/// `force`, which replaces its store.
pub fn restore(file: &Path, data: &DataDir, force: bool) -> Result<Manifest> {
    let target = data.store_file();
    let occupied = std::fs::read_dir(&data.0).map(|mut d| d.next().is_some()).unwrap_or(false);
    if occupied && !force {
        bail!(
            "{} is not empty; restore into an empty data dir, or pass --force to replace its store",
            data.0.display()
        );
    }
    // A store another process holds (a running `seal serve`) would go on being written under
    // its old name: DuckDB's lock on it says so.
    if target.exists() {
        if let Some(e) = crate::store::held_elsewhere(&target) {
            bail!(
                "{}: in use ({e}); stop the server or command that holds it before restoring over it",
                target.display()
            );
        }
    }
    std::fs::create_dir_all(&data.0).with_context(|| format!("{}", data.0.display()))?;
    let work = tempfile::Builder::new().prefix(".seal-restore-").tempdir_in(&data.0)?;
    let manifest = extract_verified(file, work.path())?;
    let wal = PathBuf::from(format!("{}.wal", target.display()));
    if wal.exists() {
        std::fs::remove_file(&wal).with_context(|| format!("{}", wal.display()))?;
    }
    std::fs::rename(work.path().join(STORE), &target).with_context(|| format!("{}", target.display()))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_verifies_restores_and_refuses_damage_and_occupied_targets() {
        let dir = tempfile::tempdir().unwrap();
        let source = DataDir(dir.path().join("source"));
        let store = Store::open(&source.store_file()).unwrap();
        store
            .audit(&crate::store::AuditRecord {
                actor: Some("ana"),
                action: "test",
                target: None,
                detail: None,
                peer: None,
            })
            .unwrap();
        let file = dir.path().join("b.sealbak");
        let made = create(&store, &file).unwrap();
        assert_eq!(made.tables["audit_log"], 1);
        assert_eq!(verify(&file).unwrap(), made);

        // Restored, it holds the same rows.
        let target = DataDir(dir.path().join("target"));
        restore(&file, &target, false).unwrap();
        assert_eq!(Store::open(&target.store_file()).unwrap().table_counts().unwrap(), made.tables);
        let e = restore(&file, &target, false).unwrap_err().to_string();
        assert!(e.contains("is not empty") && e.contains("--force"), "{e}");
        restore(&file, &target, true).unwrap();

        // One byte changed in the copy is found.
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        let damaged = dir.path().join("damaged.sealbak");
        std::fs::write(&damaged, bytes).unwrap();
        let e = format!("{:#}", verify(&damaged).unwrap_err());
        assert!(e.contains("is damaged") || e.to_lowercase().contains("checksum"), "{e}");
    }
}
