//! Downloads from the canonical mirrors, verified by SHA-256 and moved into place atomically.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::*;

use sha2::{Digest, Sha256};

/// Canonical file names and SHA-256 digests of the official releases.
pub(super) struct Remote {
    pub(super) dir: &'static str,
    mirrors: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
}

pub(super) const REMOTES: &[Remote] = &[
    Remote {
        dir: "mnist",
        mirrors: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        files: &[
            (
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        ],
    },
    Remote {
        dir: "fashion-mnist",
        mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        files: &[
            (
                "train-images-idx3-ubyte.gz",
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            ),
        ],
    },
];

pub(super) fn download(remote: &Remote, file: &str, dest_dir: &Path) -> Result<PathBuf, DataError> {
    let sha = remote
        .files
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, s)| *s)
        .ok_or_else(|| DataError::Download {
            url: file.to_string(),
            what: "not a file of this data set".into(),
        })?;
    let custom = std::env::var(MIRROR_ENV).ok();
    let mirrors: Vec<String> = match &custom {
        Some(m) => vec![format!("{}/", m.trim_end_matches('/'))],
        None => remote.mirrors.iter().map(|s| s.to_string()).collect(),
    };
    let mut last = None;
    for m in mirrors {
        let url = format!("{m}{file}");
        match fetch_verified(&url, sha, &dest_dir.join(file)) {
            Ok(p) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(DataError::Download {
        url: file.into(),
        what: "no mirror".into(),
    }))
}

/// Downloads `url`, checks its SHA-256 and moves it into place atomically.
pub fn fetch_verified(url: &str, sha256: &str, dest: &Path) -> Result<PathBuf, DataError> {
    let err = |what: String| DataError::Download {
        url: url.to_string(),
        what,
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(60))
        .build();
    let resp = agent.get(url).call().map_err(|e| err(e.to_string()))?;
    let mut body = vec![];
    resp.into_reader()
        .take(200 << 20)
        .read_to_end(&mut body)
        .map_err(|e| err(e.to_string()))?;
    let got = hex(&Sha256::digest(&body));
    if got != sha256 {
        return Err(err(format!(
            "checksum mismatch: expected SHA-256 {sha256}, got {got}; the file was not kept"
        )));
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::Io {
            path: parent.to_path_buf(),
            source: e,
        })?;
    }
    crate::util::write_atomic(dest, &body).map_err(|e| DataError::Io {
        path: dest.to_path_buf(),
        source: e,
    })?;
    Ok(dest.to_path_buf())
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
