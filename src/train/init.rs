//! `run --init-from`: a model's weights taken from a safetensors file or a run directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{nn, Tensor};

use super::TrainError;
use crate::rundir;

/// The file that `--init-from PATH` reads: PATH itself, or a run directory's checkpoint.
fn weights_file(from: &Path) -> PathBuf {
    if from.is_dir() {
        from.join(rundir::CHECKPOINT)
    } else {
        from.to_path_buf()
    }
}

fn shape(dims: &[i64]) -> String {
    format!(
        "[{}]",
        dims.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Copies every variable of `vs` from the file at `from`. Every variable of the model must be in
/// the file with the same shape, and the file must hold nothing else; otherwise the error names
/// each variable that does not match, and nothing is copied.
pub fn load_weights(vs: &mut nn::VarStore, from: &Path) -> Result<(), TrainError> {
    let file = weights_file(from);
    let fail = |problems: Vec<String>, help: String| TrainError::InitFrom {
        path: file.display().to_string(),
        problems,
        help,
    };
    if !file.is_file() {
        let what = if from.is_dir() {
            format!("the run directory has no {}", rundir::CHECKPOINT)
        } else {
            "no such file".to_string()
        };
        return Err(fail(
            vec![what],
            "give a safetensors file or a run directory with a checkpoint".into(),
        ));
    }
    let tensors = Tensor::read_safetensors(&file).map_err(|e| {
        fail(
            vec![format!("not a readable safetensors file ({e})")],
            "export the weights with safetensors (PyTorch: `safetensors.torch.save_file(model.state_dict(), PATH)` after renaming the keys)".into(),
        )
    })?;
    // A file that reads but no longer matches the checksum written with it.
    crate::rundir::verify_weights(&file).map_err(|e| {
        fail(
            vec![e],
            "copy the file again from where it was made, or train the run again".into(),
        )
    })?;
    let given: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut problems = vec![];
    for (name, var) in &vars {
        match given.get(name) {
            None => problems.push(format!("`{name}` {} is missing", shape(&var.size()))),
            Some(t) if t.size() != var.size() => problems.push(format!(
                "`{name}` is {} in the file but {} in the model",
                shape(&t.size()),
                shape(&var.size())
            )),
            Some(_) => {}
        }
    }
    for (name, t) in &given {
        if !vars.contains_key(name) {
            problems.push(format!(
                "`{name}` {} is not a variable of the model",
                shape(&t.size())
            ));
        }
    }
    if !problems.is_empty() {
        let names: Vec<String> = vars
            .iter()
            .map(|(n, v)| format!("{n} {}", shape(&v.size())))
            .collect();
        let more = match names.len() {
            n if n > 24 => format!(" and {} more", n - 24),
            _ => String::new(),
        };
        return Err(fail(
            problems,
            format!(
                "the model's variables are {}{more}",
                names[..names.len().min(24)].join(", ")
            ),
        ));
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            if let Some(t) = given.get(&name) {
                var.copy_(&t.to_kind(var.kind()).to_device(var.device()));
            }
        }
    });
    Ok(())
}
