//! The `geodesic` command: straight and geodesic interpolation between two test examples.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::geometry::{self, Geodesic};
use super::pictures::{images, points};
use super::{encode_all, io, EvalError};
use crate::data::Dataset;
use crate::ir;
use crate::plot::{self, Series, PALETTE};
use crate::runtime::model::Compiled;
use crate::util::write_atomic;

/// The `geodesic` command: straight and geodesic interpolation between test examples `i` and
/// `j`; writes geodesic-I-J.png (two strips with their lengths), geodesic-I-J.json and, for 2-D
/// latents, magnification-I-J.png. Returns the JSON.
pub fn geodesic(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    test: &Dataset,
    i: i64,
    j: i64,
    points: i64,
) -> Result<serde_json::Value, EvalError> {
    let n = test.len();
    if i < 0 || j < 0 || i >= n || j >= n || i == j {
        return Err(EvalError::Io(format!(
            "--from {i} --to {j}: pick two different test examples between 0 and {}",
            n - 1
        )));
    }
    let x = test.batch(&Tensor::from_slice(&[i, j]));
    let z = tch::no_grad(|| net.encode(&x, false));
    let f = |zz: &Tensor| net.decode(zz, false);
    let space = model.space();
    let g = geometry::solve(
        &f,
        &z.get(0),
        &z.get(1),
        space,
        points,
        &geometry::Options::default(),
    );
    let straight = geometry::initial_curve(&z.get(0), &z.get(1), space, points);
    let json = geometry::report_json(i, j, space, &straight, &g, &f);
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    let jpath = dir.join(format!("geodesic-{i}-{j}.json"));
    write_atomic(&jpath, text.as_bytes()).map_err(io(&jpath))?;
    curves_picture(dir, model, net, &straight, &g, (i, j))?;
    if space.dim() == 2 {
        magnification_picture(dir, model, net, test, &straight, &g, (i, j))?;
    }
    Ok(json)
}

fn points_of(t: &Tensor) -> Vec<(f64, f64)> {
    points(&t.detach())
}

/// geodesic-I-J.png: the decoded straight and geodesic paths (image strips, or curves in the
/// data plane).
fn curves_picture(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    straight: &Tensor,
    g: &Geodesic,
    (i, j): (i64, i64),
) -> Result<(), EvalError> {
    let ppath = dir.join(format!("geodesic-{i}-{j}.png"));
    tch::no_grad(|| -> Result<(), EvalError> {
        if model.data.is_image() {
            let (h, w) = (model.data.shape[1], model.data.shape[2]);
            let pick = |c: &Tensor| {
                let k = c.size()[0];
                let idx: Vec<i64> = (0..12).map(|t| (t * (k - 1) + 5) / 11).collect();
                c.index_select(0, &Tensor::from_slice(&idx).to_device(c.device()))
            };
            let rows = vec![
                (
                    format!("straight {:.2}", g.initial_length),
                    images(&net.decode(&pick(straight), false), h, w),
                ),
                (
                    format!("geodesic {:.2}", g.length),
                    images(&net.decode(&pick(&g.curve), false), h, w),
                ),
            ];
            plot::image_rows(
                &ppath,
                &format!("{}: test {i} to {j}, lengths in data space", model.name),
                &rows,
                h as usize,
                w as usize,
                2,
            )
            .map_err(io(&ppath))?;
        } else {
            let s = [
                Series {
                    name: format!("straight, length {:.3}", g.initial_length),
                    color: PALETTE[7],
                    points: points_of(&net.decode(straight, false)),
                },
                Series {
                    name: format!("geodesic, length {:.3}", g.length),
                    color: PALETTE[3],
                    points: points_of(&net.decode(&g.curve, false)),
                },
            ];
            plot::scatter(
                &ppath,
                &format!("{}: decoded curves {i} to {j}", model.name),
                "x1",
                "x2",
                &s,
            )
            .map_err(io(&ppath))?;
        }
        Ok(())
    })
}

/// magnification-I-J.png (2-D latents): log10 of the magnification factor over the codes'
/// range, with both paths drawn on it.
fn magnification_picture(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    test: &Dataset,
    straight: &Tensor,
    g: &Geodesic,
    (i, j): (i64, i64),
) -> Result<(), EvalError> {
    let n = test.len();
    let f = |zz: &Tensor| net.decode(zz, false);
    let pts = |c: &Tensor| points_of(c);
    let all = Tensor::cat(
        &[
            straight.shallow_clone(),
            g.curve.shallow_clone(),
            encode_all(net, &test.head(n.min(2000))),
        ],
        0,
    );
    let q = |c: i64, p: f64| {
        all.select(1, c)
            .to_kind(Kind::Float)
            .quantile_scalar(p, None, false, "linear")
            .double_value(&[])
    };
    let (x0, x1, y0, y1) = (q(0, 0.01), q(0, 0.99), q(1, 0.01), q(1, 0.99));
    let pad = |a: f64, b: f64| ((b - a) * 0.1).max(1e-3);
    let (x0, x1, y0, y1) = (
        x0 - pad(x0, x1),
        x1 + pad(x0, x1),
        y0 - pad(y0, y1),
        y1 + pad(y0, y1),
    );
    let k = 48;
    let xs = Tensor::linspace(x0, x1, k, (Kind::Float, net.device));
    let ys = Tensor::linspace(y1, y0, k, (Kind::Float, net.device));
    // Cell centres, first row at the top.
    let cx = (xs.narrow(0, 0, k - 1) + xs.narrow(0, 1, k - 1)) / 2.0;
    let cy = (ys.narrow(0, 0, k - 1) + ys.narrow(0, 1, k - 1)) / 2.0;
    let m = k - 1;
    let grid = Tensor::stack(
        &[
            cx.unsqueeze(0).expand([m, m], false),
            cy.unsqueeze(1).expand([m, m], false),
        ],
        2,
    )
    .reshape([-1, 2]);
    let mag = geometry::magnification(&f, &grid).clamp_min(1e-300).log10();
    let vals: Vec<f64> = Vec::<f64>::try_from(mag.to_device(Device::Cpu)).unwrap_or_default();
    let curves = [
        Series {
            name: format!("straight {:.2}", g.initial_length),
            color: [0, 0, 0],
            points: pts(straight),
        },
        Series {
            name: format!("geodesic {:.2}", g.length),
            color: [230, 30, 30],
            points: pts(&g.curve),
        },
    ];
    let mpath = dir.join(format!("magnification-{i}-{j}.png"));
    plot::heatmap(
        &mpath,
        &format!("{}: log10 magnification factor", model.name),
        "z1",
        "z2",
        (x0, x1),
        (y0, y1),
        m as usize,
        &vals,
        "log10 sqrt(det M)",
        &curves,
    )
    .map_err(io(&mpath))?;
    Ok(())
}
