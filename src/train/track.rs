//! Training's TensorBoard events: scalars at the logging points and per epoch, image grids every
//! few epochs, the model file as text. A failed write warns once and ends the events, never the
//! training.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::EpochMetrics;
use crate::data::Dataset;
use crate::plot::{image_grid, Canvas};
use crate::runtime::model::Compiled;
use crate::tensorboard::{EventWriter, Value};

/// The run's event file; None once a write failed.
pub(super) struct Tracker {
    tb: Option<EventWriter>,
}

impl Tracker {
    /// A new event file in `dir` with the model file's `source` as text; a warning (and no
    /// events) when it cannot be created.
    pub fn open(dir: &Path, source: &str) -> Tracker {
        let made = EventWriter::create(dir).and_then(|mut w| {
            let text = format!("```\n{source}\n```");
            w.write(0, &[("model", Value::Text(&text))])?;
            Ok(w)
        });
        match made {
            Ok(w) => Tracker { tb: Some(w) },
            Err(e) => {
                eprintln!("warning: no TensorBoard events for this run: {e}");
                Tracker { tb: None }
            }
        }
    }

    fn write(&mut self, step: i64, values: &[(&str, Value)]) {
        let Some(tb) = &mut self.tb else { return };
        let done =
            crate::util::fault::before_write("tensorboard").and_then(|_| tb.write(step, values));
        self.check(done);
    }

    /// A failed write or flush: the warning, once, and no more events.
    fn check(&mut self, done: std::io::Result<()>) {
        if let (Err(e), Some(tb)) = (done, &self.tb) {
            eprintln!(
                "warning: could not write TensorBoard events to {}: {e}; training goes on without them",
                tb.path().display()
            );
            self.tb = None;
        }
    }

    /// Scalars at a global step.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f64)]) {
        let v: Vec<(&str, Value)> = values
            .iter()
            .map(|(t, x)| (*t, Value::Scalar(*x as f32)))
            .collect();
        self.write(step, &v);
    }

    /// The epoch's means and validation metrics at its last step.
    pub fn epoch(&mut self, m: &EpochMetrics, step: i64) {
        let mut values = vec![
            ("epoch/recon", m.recon),
            ("epoch/penalty", m.penalty),
            ("epoch/total", m.total),
            ("epoch/seconds", m.seconds),
        ];
        if let Some(v) = &m.validation {
            values.extend([
                ("validation/recon", v.recon),
                ("validation/penalty", v.penalty),
                ("validation/total", v.total),
                ("validation/latent_mmd", v.latent_mmd),
            ]);
        }
        self.scalars(step, &values);
        self.flush();
    }

    /// The (samples, reconstructions) grids that `draw` makes, when there are events to write
    /// them to and the data are images.
    pub fn images(&mut self, step: i64, draw: impl FnOnce() -> Option<(Canvas, Canvas)>) {
        if self.tb.is_none() {
            return;
        }
        let Some((samples, recons)) = draw() else {
            return;
        };
        let png = |c: &Canvas| c.encode().map(|p| (c.height, c.width, p));
        if let (Ok(s), Ok(r)) = (png(&samples), png(&recons)) {
            let values = [
                ("samples", png_value(&s)),
                ("reconstructions", png_value(&r)),
            ];
            self.write(step, &values);
        }
        self.flush();
    }

    pub fn flush(&mut self) {
        if let Some(tb) = &mut self.tb {
            let done = tb.flush();
            self.check(done);
        }
    }
}

/// An RGB PNG (height, width, bytes) as a TensorBoard image.
fn png_value((height, width, png): &(usize, usize, Vec<u8>)) -> Value<'_> {
    Value::Png {
        height: *height,
        width: *width,
        channels: 3,
        png,
    }
}

/// 2 rows of 8 decoded prior samples (drawn with `seed`), and 8 training images above their
/// reconstructions, for image data (grey: the first channel); None for other data.
pub(super) fn grids(net: &Compiled, train: &Dataset, seed: i64) -> Option<(Canvas, Canvas)> {
    let [_, h, w] = net.model.data.shape.as_slice() else {
        return None;
    };
    let (h, w) = (*h as usize, *w as usize);
    let rows = |t: &Tensor| -> Option<Vec<Vec<f32>>> {
        // Grey or colour: Canvas::image tells them apart by the number of planes.
        let t = t.to_kind(Kind::Float).to_device(Device::Cpu);
        (0..t.size()[0])
            .map(|i| Vec::<f32>::try_from(t.get(i).flatten(0, -1)).ok())
            .collect()
    };
    tch::manual_seed(seed);
    let (samples, x, xhat) = tch::no_grad(|| {
        let s = net.decode(&net.sample_prior(16), false);
        let x = train.head(train.len().min(8));
        let xhat = net.decode(&net.encode(&x, false), false);
        (s, x, xhat)
    });
    let s = rows(&samples)?;
    let grid_s = image_grid(&[s[..8].to_vec(), s[8..].to_vec()], h, w, 2);
    let grid_r = image_grid(&[rows(&x)?, rows(&xhat)?], h, w, 2);
    Some((grid_s, grid_r))
}
