//! Model folders sent as archives (`.tar.gz`, `.tgz`, `.tar` or `.zip`, what `seal models
//! export` writes, packed) through `POST /api/uploads`. Each archive is unpacked once into the
//! data dir's `models/` folder, named by the upload's content hash: regular files and folders
//! only (a link could point the server at any file it can read), every path inside the
//! archive's folder, and no more bytes than `ingest.max_decompressed_mb`. It is unpacked into a
//! temporary folder first and renamed into place, so a failed or killed unpack leaves nothing.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::DataDir;

/// How an archive is packed, by its name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Packing {
    TarGz,
    Tar,
    Zip,
}

fn packing(name: &str) -> Option<Packing> {
    let name = name.to_ascii_lowercase();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some(Packing::TarGz)
    } else if name.ends_with(".tar") {
        Some(Packing::Tar)
    } else if name.ends_with(".zip") {
        Some(Packing::Zip)
    } else {
        None
    }
}

/// Whether an uploaded file's name is that of a model archive.
pub fn is_model_archive(name: &str) -> bool {
    packing(name).is_some()
}

/// The model folder of an uploaded archive (`uploads/<id>/…/<name>`): unpacked into
/// `models/<id>` unless it was before, then the folder in it that holds `model.onnx` (the top,
/// or its one folder).
pub fn unpack_model(data: &DataDir, archive: &Path, cap: u64) -> Result<PathBuf> {
    let name = archive.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let how = packing(name).with_context(|| {
        format!("{name}: not a model archive (.tar.gz, .tgz, .tar or .zip of a folder `seal models export` wrote)")
    })?;
    let id = archive
        .strip_prefix(data.uploads())
        .ok()
        .and_then(|p| p.components().next())
        .and_then(|c| c.as_os_str().to_str())
        .with_context(|| format!("{}: not a file of the uploads folder", archive.display()))?;
    let models = data.models();
    let target = models.join(id);
    if !target.is_dir() {
        std::fs::create_dir_all(&models).with_context(|| models.display().to_string())?;
        let partial = tempfile::Builder::new()
            .prefix(".partial-")
            .tempdir_in(&models)
            .with_context(|| models.display().to_string())?;
        match how {
            Packing::TarGz => {
                let file = std::fs::File::open(archive)?;
                unpack_tar(flate2::read::GzDecoder::new(file), partial.path(), cap, name)?
            }
            Packing::Tar => unpack_tar(std::fs::File::open(archive)?, partial.path(), cap, name)?,
            Packing::Zip => unpack_zip(archive, partial.path(), cap, name)?,
        }
        // Whole or not at all: a concurrent unpack of the same archive may have won the race.
        let kept = partial.keep();
        if std::fs::rename(&kept, &target).is_err() {
            let _ = std::fs::remove_dir_all(&kept);
            if !target.is_dir() {
                bail!("{}: could not be moved into place", target.display());
            }
        }
    }
    model_folder(&target).with_context(|| {
        format!("{name}: no model folder in it (model.onnx and tokenizer.json at its top, or in its one folder)")
    })
}

/// Packs `folder` (a model export) into the .tar.gz `out`, its files at the archive's top: what
/// `seal models add --server` sends.
pub fn pack_folder(folder: &Path, out: &Path) -> Result<()> {
    let file = std::fs::File::create(out).with_context(|| out.display().to_string())?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    tar.append_dir_all(".", folder).with_context(|| format!("packing {}", folder.display()))?;
    tar.into_inner()?.finish()?;
    Ok(())
}

/// The folder of an unpacked archive that holds the model.
fn model_folder(top: &Path) -> Option<PathBuf> {
    let holds = |p: &Path| p.join("model.onnx").is_file() && p.join("tokenizer.json").is_file();
    if holds(top) {
        return Some(top.to_owned());
    }
    let folders: Vec<PathBuf> =
        std::fs::read_dir(top).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    match folders.as_slice() {
        [one] if holds(one) => Some(one.clone()),
        _ => None,
    }
}

fn too_big(name: &str, cap: u64) -> anyhow::Error {
    anyhow::anyhow!("{name}: unpacks to more than {} MB (ingest.max_decompressed_mb)", cap / 1_000_000)
}

fn unpack_tar(reader: impl Read, into: &Path, cap: u64, name: &str) -> Result<()> {
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(false);
    tar.set_unpack_xattrs(false);
    let mut total = 0u64;
    for entry in tar.entries().with_context(|| format!("{name}: not a tar archive"))? {
        let mut entry = entry.with_context(|| format!("{name}: a damaged entry"))?;
        let path = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total = total.saturating_add(entry.size());
                if total > cap {
                    return Err(too_big(name, cap));
                }
            }
            tar::EntryType::Directory => {}
            // Metadata of the archive itself, not files.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => bail!("{name}: `{path}` is a {other:?} entry; a model archive holds files and folders only"),
        }
        if !entry.unpack_in(into).with_context(|| format!("{name}: `{path}`"))? {
            bail!("{name}: `{path}` lies outside the archive's folder");
        }
    }
    Ok(())
}

fn unpack_zip(archive: &Path, into: &Path, cap: u64, name: &str) -> Result<()> {
    let file = std::fs::File::open(archive)?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{name}: not a zip archive"))?;
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).with_context(|| format!("{name}: a damaged entry"))?;
        let shown = entry.name().to_owned();
        let Some(relative) = entry.enclosed_name() else {
            bail!("{name}: `{shown}` lies outside the archive's folder");
        };
        if entry.is_symlink() {
            bail!("{name}: `{shown}` is a link; a model archive holds files and folders only");
        }
        let path = into.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // The sizes an archive declares are not trusted: the copy stops at the cap.
        let left = cap.saturating_sub(total);
        let mut out = std::fs::File::create(&path)?;
        let copied = std::io::copy(&mut (&mut entry).take(left.saturating_add(1)), &mut out)
            .with_context(|| format!("{name}: `{shown}`"))?;
        total = total.saturating_add(copied);
        if total > cap {
            return Err(too_big(name, cap));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_known_by_their_names() {
        assert_eq!(packing("rm.tar.gz"), Some(Packing::TarGz));
        assert_eq!(packing("RM.TGZ"), Some(Packing::TarGz));
        assert_eq!(packing("rm.tar"), Some(Packing::Tar));
        assert_eq!(packing("rm.zip"), Some(Packing::Zip));
        assert_eq!(packing("test.jsonl.gz"), None);
    }
}
