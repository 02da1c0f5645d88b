//! The training state on disk: the run lock, the loop's position, and `resume.safetensors`
//! (variables, optimiser moments, discriminators, position, running sums).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use tch::{nn, Device, Tensor};

use super::validate::Best;
use super::{io_err, TrainError};
use crate::rundir;
use crate::runtime::objective::Discriminator;
use crate::runtime::optim::Adam;

/// A lock file holding the process id; removed when dropped.
pub(crate) struct RunLock {
    path: PathBuf,
}

impl RunLock {
    pub(crate) fn acquire(dir: &Path) -> Result<RunLock, TrainError> {
        let path = dir.join(rundir::LOCK);
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id()).map_err(io_err(&path))?;
                    crate::signals::set_lock(Some(path.clone()));
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if let Some(pid) = pid {
                        if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
                        {
                            return Err(TrainError::Locked {
                                dir: dir.display().to_string(),
                                pid,
                            });
                        }
                    }
                    eprintln!(
                        "note: removing a stale lock in {} (process {} is not running)",
                        dir.display(),
                        pid.map_or("?".into(), |p| p.to_string())
                    );
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(TrainError::Io { path, error: e }),
            }
        }
        Err(TrainError::Locked {
            dir: dir.display().to_string(),
            pid: 0,
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        crate::signals::set_lock(None);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where training starts: epoch, step within it, the running sums of that epoch, and the best
/// validation so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Position {
    pub epoch: i64,
    pub step: i64,
    pub sum_rec: f64,
    pub sum_pen: f64,
    pub best: Best,
}

impl Position {
    /// The start of `epoch`, with empty sums.
    pub fn start_of(epoch: i64) -> Position {
        Position {
            epoch,
            step: 0,
            sum_rec: 0.0,
            sum_pen: 0.0,
            best: Best::default(),
        }
    }
}

/// Writes the variables, the optimiser state, the discriminators and the position, atomically,
/// then the checkpoint.
pub(crate) fn save_state(
    dir: &Path,
    vs: &nn::VarStore,
    opt: &Adam,
    discs: &[Option<Discriminator>],
    pos: Position,
) -> Result<(), TrainError> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("model.{n}"), t.to_device(Device::Cpu)))
        .collect();
    named.extend(opt.state());
    for (i, d) in discs.iter().enumerate() {
        let Some(d) = d else { continue };
        named.extend(
            d.vs.variables()
                .into_iter()
                .map(|(n, t)| (format!("disc{i}.model.{n}"), t.to_device(Device::Cpu))),
        );
        named.extend(d.opt.state());
    }
    named.push((
        "state.position".into(),
        Tensor::from_slice(&[pos.epoch, pos.step]),
    ));
    named.push((
        "state.sums".into(),
        Tensor::from_slice(&[pos.sum_rec, pos.sum_pen]),
    ));
    named.push(("state.best".into(), Tensor::from_slice(&pos.best.to_vec())));
    let tmp = dir.join(".resume.tmp.safetensors");
    let dest = dir.join(rundir::RESUME);
    crate::util::fault::before_write("resume").map_err(io_err(&dest))?;
    let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    if let Err(e) = Tensor::write_safetensors(&refs, &tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(match rundir::io_of_torch(&e) {
            Some(error) => TrainError::Io { path: dest, error },
            None => e.into(),
        });
    }
    rundir::seal_weights(&tmp).map_err(io_err(&dest))?;
    crate::util::fault::after_temporary("resume", &tmp);
    std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    Ok(rundir::save_checkpoint(vs, dir)?)
}

/// A saved state read back: its tensors by name.
pub(crate) struct SavedState(HashMap<String, Tensor>);

impl SavedState {
    /// Reads `dir/resume.safetensors`.
    pub fn read(path: &PathBuf) -> Result<SavedState, TrainError> {
        rundir::verify_weights(path).map_err(TrainError::Damaged)?;
        Ok(SavedState(
            Tensor::read_safetensors(path)?.into_iter().collect(),
        ))
    }

    /// The saved position, when there is one.
    pub fn position(&self) -> Option<Position> {
        let p = self.0.get("state.position")?;
        let sums = self
            .0
            .get("state.sums")
            .map(|t| (t.double_value(&[0]), t.double_value(&[1])))
            .unwrap_or((0.0, 0.0));
        // A state written before validation existed has no `state.best`.
        let best = self
            .0
            .get("state.best")
            .and_then(|t| Vec::<f64>::try_from(t).ok())
            .and_then(|v| Best::from_slice(&v))
            .unwrap_or_default();
        Some(Position {
            epoch: p.int64_value(&[0]),
            step: p.int64_value(&[1]),
            sum_rec: sums.0,
            sum_pen: sums.1,
            best,
        })
    }

    /// Copies the saved variables `{prefix}model.NAME` into `vs`; `what` names them in errors.
    pub fn restore(&self, vs: &nn::VarStore, prefix: &str, what: &str) -> Result<(), String> {
        tch::no_grad(|| {
            for (name, mut var) in vs.variables() {
                let saved = self
                    .0
                    .get(&format!("{prefix}model.{name}"))
                    .ok_or_else(|| format!("the state lacks {what} {name}"))?;
                var.copy_(&saved.to_device(vs.device()));
            }
            Ok(())
        })
    }

    /// The tensors, for the optimisers' own state.
    pub fn tensors(&self) -> &HashMap<String, Tensor> {
        &self.0
    }
}
