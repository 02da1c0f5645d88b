//! Sweeps: a model file run with many settings of its constants and `train` settings.
//!
//! A sweep directory holds `sweep.json` (the manifest: the model file, each member's overrides)
//! and `members/NNNN/model.sae` (each member's effective model text, checked when the sweep is
//! made) with its run directory `members/NNNN/run`. Members are trained by `sweep run` (locally,
//! K at a time) or one per Slurm array task (`sweep run DIR --index I`); their state is read from
//! their run directories, so a sweep can be stopped and continued at any point.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::overrides::Override;
use crate::rundir;

/// The manifest's file name.
pub const MANIFEST: &str = "sweep.json";
/// A member's last failure (the error as shown), beside its run directory.
pub const FAILED: &str = "failed.txt";

/// One member: its overrides and where its files are (relative to the sweep directory).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    pub index: usize,
    /// (name, value): first the `--set` ones given to every member, then those of the
    /// `--vary`, `--grid` and `--range` options in their order.
    pub overrides: Vec<(String, String)>,
    /// How many of `overrides` are the `--set` ones (left out of labels).
    #[serde(default)]
    pub fixed: usize,
    pub dir: String,
}

impl Member {
    /// `gamma=10 seed=0`.
    pub fn label(&self) -> String {
        self.overrides[self.fixed.min(self.overrides.len())..]
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The setting without its seed: members that differ only in `seed` are repeats.
    pub fn setting(&self) -> String {
        self.overrides[self.fixed.min(self.overrides.len())..]
            .iter()
            .filter(|(n, _)| n != "seed")
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `sweep.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The model file the members come from (absolute), and its folder (imports).
    pub file: String,
    pub members: Vec<Member>,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (is {} a sweep directory made by `sae-dsl sweep FILE ... --out DIR`?)",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The run directory of member `m`.
    pub fn run_dir(&self, dir: &Path, m: &Member) -> PathBuf {
        dir.join(&m.dir).join("run")
    }
}

/// The settings of a sweep: the grid's values per name, and random draws over ranges.
pub struct Plan {
    /// Given to every member, before the grid's values.
    pub fixed: Vec<(String, String)>,
    pub grid: Vec<(String, Vec<String>)>,
    /// Changed one at a time: the file's settings, then one base per (name, value).
    pub vary: Vec<(String, Vec<String>)>,
    pub ranges: Vec<Range>,
    pub random: usize,
    pub seed: u64,
}

/// `NAME=LOW:HIGH[:log|:lin|:int]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub name: String,
    pub low: f64,
    pub high: f64,
    pub scale: Scale,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    Log,
    Int,
}

/// `gamma=1,10,100` of `--grid`.
pub fn parse_grid(s: &str) -> Result<(String, Vec<String>), String> {
    parse_values("--grid", s)
}

/// `d=4,16` of `--vary`.
pub fn parse_vary(s: &str) -> Result<(String, Vec<String>), String> {
    parse_values("--vary", s)
}

/// NAME=V1,V2,... of option `flag`.
fn parse_values(flag: &str, s: &str) -> Result<(String, Vec<String>), String> {
    let (name, values) = s.split_once('=').ok_or_else(|| {
        format!("`{flag} {s}` is not NAME=V1,V2,... (e.g. `{flag} gamma=1,10,100`)")
    })?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
    if name.trim().is_empty() || values.iter().all(String::is_empty) {
        return Err(format!(
            "`{flag} {s}` needs a name and at least one value (e.g. `{flag} gamma=1,10,100`)"
        ));
    }
    // `gamma=1,,10` is a typing slip, not two values: never dropped silently.
    if let Some(k) = values.iter().position(String::is_empty) {
        return Err(format!(
            "`{flag} {s}`: value {} is empty (two commas, or one at an end); write each value once, e.g. `{flag} gamma=1,10`",
            k + 1
        ));
    }
    Ok((name.trim().to_string(), values))
}

/// `lr=1e-4:1e-2:log`.
pub fn parse_range(s: &str) -> Result<Range, String> {
    let bad = || {
        format!(
            "`--range {s}` is not NAME=LOW:HIGH[:log|:lin|:int] (e.g. `--range lr=1e-4:1e-2:log`)"
        )
    };
    let (name, spec) = s.split_once('=').ok_or_else(bad)?;
    let parts: Vec<&str> = spec.split(':').collect();
    let (low, high, scale) = match parts.as_slice() {
        [l, h] => (*l, *h, "lin"),
        [l, h, k] => (*l, *h, *k),
        _ => return Err(bad()),
    };
    let (low, high): (f64, f64) = (
        low.trim().parse().map_err(|_| bad())?,
        high.trim().parse().map_err(|_| bad())?,
    );
    let scale = match scale {
        "log" => Scale::Log,
        "lin" => Scale::Linear,
        "int" => Scale::Int,
        _ => return Err(bad()),
    };
    if !(low < high) || !low.is_finite() || !high.is_finite() {
        return Err(format!("`--range {s}`: LOW must be below HIGH"));
    }
    if scale == Scale::Log && low <= 0.0 {
        return Err(format!("`--range {s}`: a log range needs LOW > 0"));
    }
    Ok(Range {
        name: name.trim().to_string(),
        low,
        high,
        scale,
    })
}

/// A drawn real with four significant digits (labels and member files read `0.003457`, not
/// `0.0034567891234567`), kept inside its range.
fn short(v: f64, r: &Range) -> String {
    let rounded: f64 = format!("{v:.3e}").parse().unwrap_or(v);
    format!("{}", rounded.clamp(r.low, r.high))
}

/// splitmix64: the random draws of a sweep, the same for a seed in every version.
fn uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

impl Plan {
    /// Every member's overrides: the bases (the fixed settings, then each varied value alone),
    /// each with the grid's product (first option outermost), each with every random draw when
    /// there are ranges.
    pub fn members(&self) -> Vec<Vec<(String, String)>> {
        let mut combos: Vec<Vec<(String, String)>> = vec![self.fixed.clone()];
        for (name, values) in &self.vary {
            for v in values {
                let mut c = self.fixed.clone();
                c.push((name.clone(), v.clone()));
                combos.push(c);
            }
        }
        for (name, values) in &self.grid {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((name.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        if self.ranges.is_empty() || self.random == 0 {
            return combos;
        }
        let mut state = self.seed;
        let draws: Vec<Vec<(String, String)>> = (0..self.random)
            .map(|_| {
                self.ranges
                    .iter()
                    .map(|r| {
                        let u = uniform(&mut state);
                        let v = match r.scale {
                            Scale::Linear => short(r.low + u * (r.high - r.low), r),
                            Scale::Log => {
                                short((r.low.ln() + u * (r.high.ln() - r.low.ln())).exp(), r)
                            }
                            Scale::Int => format!(
                                "{}",
                                (r.low.ceil() + (u * (r.high.floor() - r.low.ceil() + 1.0)).floor())
                                    as i64
                            ),
                        };
                        (r.name.clone(), v)
                    })
                    .collect()
            })
            .collect();
        combos
            .iter()
            .flat_map(|c| {
                draws.iter().map(move |d| {
                    let mut c = c.clone();
                    c.extend(d.iter().cloned());
                    c
                })
            })
            .collect()
    }
}

/// Where a member stands, read from its run directory.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    NotStarted,
    /// Trained (and, without `--no-eval`, evaluated).
    Done,
    /// A process holds its lock.
    Running(u32),
    /// Stopped with its state saved after this many epochs.
    Interrupted(usize),
    /// Trained to its last epoch without evaluation (`--no-eval`).
    Trained,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::NotStarted => write!(f, "not started"),
            State::Done => write!(f, "done"),
            State::Running(pid) => write!(f, "running (process {pid})"),
            State::Interrupted(e) => write!(f, "interrupted after {e} epochs"),
            State::Trained => write!(f, "trained, not evaluated"),
        }
    }
}

/// The state of the run in `run`, whose model trains for `epochs`.
pub fn state(run: &Path, epochs: Option<i64>) -> State {
    if let Ok(pid) = std::fs::read_to_string(run.join(rundir::LOCK)) {
        if let Ok(pid) = pid.trim().parse::<u32>() {
            if Path::new(&format!("/proc/{pid}")).exists() {
                return State::Running(pid);
            }
        }
    }
    if run.join(rundir::SUMMARY).is_file() {
        let evaluated = std::fs::read_to_string(run.join(rundir::SUMMARY))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v.get("latent_mmd_x1000").is_some());
        return if evaluated {
            State::Done
        } else {
            State::Trained
        };
    }
    let done = std::fs::read_to_string(run.join(rundir::METRICS))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    if run.join(rundir::RESUME).is_file() {
        if epochs.is_some_and(|e| done as i64 >= e) {
            return State::Trained;
        }
        return State::Interrupted(done);
    }
    State::NotStarted
}

/// Makes the sweep directory `out`: the manifest and each member's effective model text. Every
/// member is compiled first; nothing is written when one fails (its diagnostics are returned).
pub fn create(file: &Path, plan: &Plan, out: &Path) -> Result<Manifest, String> {
    let non_empty = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if non_empty {
        return Err(format!(
            "{} exists and is not empty; choose another --out",
            out.display()
        ));
    }
    let sets = plan.members();
    let mut texts = vec![];
    for (i, set) in sets.iter().enumerate() {
        let overrides: Vec<Override> = set
            .iter()
            .map(|(n, v)| Override {
                name: n.clone(),
                value: v.clone(),
            })
            .collect();
        let c = crate::compile_file_with(file, &overrides).map_err(|e| e.to_string())?;
        if c.has_errors() || c.model.is_none() {
            let label = set
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(format!(
                "member {i} ({label}) does not compile:\n{}",
                c.sources.render(&c.diags, false, 100)
            ));
        }
        let imports = rundir::Imports::of(&c.program);
        let text = c.effective.unwrap_or_else(|| c.sources.text(0).to_string());
        texts.push((text, imports));
    }
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let members: Vec<Member> = sets
        .into_iter()
        .enumerate()
        .map(|(i, overrides)| Member {
            index: i,
            overrides,
            fixed: plan.fixed.len(),
            dir: format!("members/{i:04}"),
        })
        .collect();
    let manifest = Manifest {
        file: abs.display().to_string(),
        members,
    };
    for (m, (text, imports)) in manifest.members.iter().zip(&texts) {
        let d = out.join(&m.dir);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        let header = format!(
            "# sweep member {} of {}: {} (from {})\n",
            m.index,
            out.display(),
            if m.overrides.is_empty() {
                "no overrides".to_string()
            } else {
                m.label()
            },
            manifest.file
        );
        crate::util::write_atomic(&d.join(rundir::MODEL), format!("{header}{text}").as_bytes())
            .map_err(|e| format!("{}: {e}", d.display()))?;
        // The member's own copies of the model's imports: the sweep works wherever it is moved.
        imports
            .write(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    crate::util::write_atomic(&out.join(MANIFEST), text.as_bytes())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(manifest)
}

/// The sbatch script of a sweep: one array task per member, each `sweep run DIR --index I`.
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub cpus_per_task: u32,
    pub array_max: Option<usize>,
    /// `--data-dir` for every task (absolute).
    pub data_dir: Option<PathBuf>,
    /// `--no-eval` for every task.
    pub no_eval: bool,
}

/// The text of `sweep.sbatch` for the sweep in `dir` run by the binary `exe`.
pub fn sbatch(dir: &Path, members: usize, exe: &Path, o: &SlurmOptions) -> String {
    let d = dir.display();
    let mut s = String::from(
        "#!/bin/bash\n# Written by `sae-dsl sweep slurm`: one array task per sweep member.\n",
    );
    s += &format!(
        "#SBATCH --job-name=sae-sweep\n#SBATCH --array=0-{}",
        members.saturating_sub(1)
    );
    if let Some(m) = o.array_max {
        s += &format!("%{m}");
    }
    s += &format!(
        "\n#SBATCH --output={d}/logs/%A_%a.out\n#SBATCH --cpus-per-task={}\n",
        o.cpus_per_task
    );
    if let Some(p) = &o.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(t) = &o.time {
        s += &format!("#SBATCH --time={t}\n");
    }
    if let Some(g) = o.gpus_per_task {
        s += &format!("#SBATCH --gpus-per-task={g}\n");
    }
    let mut extra = String::new();
    if let Some(dd) = &o.data_dir {
        extra += &format!(" --data-dir \"{}\"", dd.display());
    }
    if o.no_eval {
        extra += " --no-eval";
    }
    s += &format!(
        "set -euo pipefail\nexec \"{}\" sweep run \"{d}\" --index \"$SLURM_ARRAY_TASK_ID\" --threads {}{extra}\n",
        exe.display(),
        o.cpus_per_task
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_grid_value_is_an_error_not_dropped() {
        let e = parse_grid("gamma=1,,10").expect_err("an empty value");
        assert_eq!(
            e,
            "`--grid gamma=1,,10`: value 2 is empty (two commas, or one at an end); write each value once, e.g. `--grid gamma=1,10`"
        );
        assert!(parse_vary("d=4,").is_err());
        assert_eq!(
            parse_grid("gamma= 1, 10").expect("spaces are fine"),
            ("gamma".to_string(), vec!["1".to_string(), "10".to_string()])
        );
    }

    #[test]
    fn a_grid_is_a_product_and_random_draws_stay_in_their_ranges() {
        let plan = Plan {
            fixed: vec![],
            grid: vec![
                parse_grid("gamma=1,10").expect("grid"),
                parse_grid("seed=0,1,2").expect("grid"),
            ],
            vary: vec![],
            ranges: vec![
                parse_range("lr=1e-4:1e-2:log").expect("range"),
                parse_range("batch=32:64:int").expect("range"),
            ],
            random: 4,
            seed: 1,
        };
        let m = plan.members();
        assert_eq!(m.len(), 2 * 3 * 4);
        assert_eq!(m[0][0], ("gamma".to_string(), "1".to_string()));
        assert_eq!(m[23][1], ("seed".to_string(), "2".to_string()));
        for set in &m {
            let lr: f64 = set[2].1.parse().expect("lr");
            assert!((1e-4..=1e-2).contains(&lr), "{lr}");
            let b: i64 = set[3].1.parse().expect("batch");
            assert!((32..=64).contains(&b), "{b}");
        }
        assert_eq!(plan.members(), m, "the same seed draws the same");
        for member in &m {
            let lr = &member[2].1;
            let digits = lr.trim_start_matches("0.").trim_start_matches('0').len();
            assert!(
                digits <= 5,
                "a drawn value printed with four significant digits: {lr}"
            );
        }
        assert!(parse_range("lr=0:1:log").is_err());
        assert!(parse_range("lr=2:1").is_err());
        assert!(parse_grid("gamma").is_err());
    }

    #[test]
    fn a_coordinate_sweep_changes_one_setting_at_a_time() {
        let plan = Plan {
            fixed: vec![("gamma".into(), "10".into())],
            grid: vec![parse_grid("seed=0,1").expect("grid")],
            vary: vec![
                parse_vary("d=4,16").expect("vary"),
                parse_vary("epsilon=0.1").expect("vary"),
            ],
            ranges: vec![],
            random: 0,
            seed: 0,
        };
        let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            plan.members(),
            vec![
                s(&[("gamma", "10"), ("seed", "0")]),
                s(&[("gamma", "10"), ("seed", "1")]),
                s(&[("gamma", "10"), ("d", "4"), ("seed", "0")]),
                s(&[("gamma", "10"), ("d", "4"), ("seed", "1")]),
                s(&[("gamma", "10"), ("d", "16"), ("seed", "0")]),
                s(&[("gamma", "10"), ("d", "16"), ("seed", "1")]),
                s(&[("gamma", "10"), ("epsilon", "0.1"), ("seed", "0")]),
                s(&[("gamma", "10"), ("epsilon", "0.1"), ("seed", "1")]),
            ]
        );
    }
}
