//! Pictures of a run: reconstructions, samples, latent scatters, the decoded manifold, loss
//! curves, interpolation strips, and prior samples.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::{encode_all, io, sample, EvalError};
use crate::data::Dataset;
use crate::ir::{self, Space};
use crate::plot::{self, Series, PALETTE};
use crate::rundir;
use crate::runtime::model::Compiled;
use crate::runtime::space::latent_path;
use crate::util::write_atomic;

/// Each example of `t` ([N, C, h, w]) as its values, channel planes in order.
pub(crate) fn images(t: &Tensor, h: i64, w: i64) -> Vec<Vec<f32>> {
    let n = t.size().first().copied().unwrap_or(0);
    let t = t
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .reshape([n, -1]);
    debug_assert!(n == 0 || t.size()[1] % (h * w) == 0);
    (0..t.size()[0])
        .map(|i| Vec::<f32>::try_from(t.get(i)).unwrap_or_default())
        .collect()
}

/// Writes images `[N, C, H, W]` of the model's data shape as a titled grid with `cols` columns.
pub(crate) fn image_grid(
    path: &Path,
    title: &str,
    t: &Tensor,
    model: &ir::Model,
    cols: usize,
    zoom: usize,
) -> Result<(), EvalError> {
    let (h, w) = (model.data.shape[1], model.data.shape[2]);
    let rows: Vec<(String, Vec<Vec<f32>>)> = images(t, h, w)
        .chunks(cols.max(1))
        .map(|c| (String::new(), c.to_vec()))
        .collect();
    plot::image_rows(path, title, &rows, h as usize, w as usize, zoom).map_err(io(path))
}

pub(crate) fn points(t: &Tensor) -> Vec<(f64, f64)> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Double);
    let v: Vec<f64> =
        Vec::<f64>::try_from(t.narrow(1, 0, 2).contiguous().flatten(0, -1)).unwrap_or_default();
    v.chunks(2).map(|c| (c[0], c[1])).collect()
}

/// 2-D coordinates of latent codes: the codes themselves in 2-D, a regular-polygon projection for
/// the simplex, the first two principal components otherwise. Returns the axis names.
pub fn project_2d(codes: &Tensor, space: Space) -> (Tensor, &'static str, &'static str) {
    let codes = codes.to_kind(Kind::Double);
    let d = codes.size()[1];
    if let Space::Simplex { dim } = space {
        let ang = Tensor::arange(dim, (Kind::Double, codes.device()))
            * (2.0 * std::f64::consts::PI / dim as f64);
        let verts = Tensor::stack(&[ang.sin(), ang.cos()], 1);
        return (
            codes.matmul(&verts),
            "simplex projection x",
            "simplex projection y",
        );
    }
    if let Space::Torus { k } = space {
        if k >= 2 {
            // The first two circles' angles: the torus cut open into a square.
            let a = crate::runtime::tensor::torus_angles(&codes).narrow(1, 0, 2);
            return (a, "angle on circle 1", "angle on circle 2");
        }
    }
    if d == 2 {
        return (codes, "z1", "z2");
    }
    // A 1-D latent: the codes along x, spread along y by their index so that they do not overlap.
    if d < 2 {
        let n = codes.size()[0];
        let spread = Tensor::arange(n, (Kind::Double, codes.device())) / (n.max(1) as f64);
        let x = if d == 1 {
            codes.to_kind(Kind::Double).squeeze_dim(1)
        } else {
            spread.zeros_like()
        };
        return (Tensor::stack(&[x, spread], 1), "z1", "example (index / n)");
    }
    let centred = &codes - codes.mean_dim(0, true, Kind::Double);
    let cov = centred.tr().matmul(&centred);
    let (_, vecs) = cov.linalg_eigh("L");
    let top = vecs.narrow(1, d - 2, 2).flip([1]);
    (
        centred.matmul(&top),
        "principal component 1",
        "principal component 2",
    )
}

/// Writes the pictures of a run: loss curves, samples, reconstructions, vertices (simplex),
/// latent codes by label, the decoded manifold (2-D latents), an interpolation strip.
pub fn draw(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    train: &Dataset,
    test: &Dataset,
) -> Result<(), EvalError> {
    loss_curves(dir)?;
    let image = model.data.is_image();
    tch::no_grad(|| -> Result<(), EvalError> {
        if image {
            image_pictures(dir, model, net, test)?;
        } else {
            point_pictures(dir, model, net, train)?;
        }
        let codes = latent_picture(dir, model, net, test)?;
        if model.space().dim() == 2 {
            manifold(&dir.join("manifold.png"), model, net, &codes)?;
        }
        Ok(())
    })
}

/// The pictures of an image model: decoded prior samples, test reconstructions, the simplex's
/// vertices (simplex latents) and an interpolation strip.
fn image_pictures(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    test: &Dataset,
) -> Result<(), EvalError> {
    let (h, w) = (model.data.shape[1], model.data.shape[2]);
    image_grid(
        &dir.join("samples.png"),
        &format!("{}: prior samples, decoded", model.name),
        &sample(net, 64),
        model,
        8,
        2,
    )?;
    let k = test.len().min(32);
    let x = test.head(k);
    let r = net.decode(&net.encode(&x, false), false);
    let (xi, ri) = (images(&x, h, w), images(&r, h, w));
    let mut rows = vec![];
    for c in 0..(k as usize).div_ceil(8) {
        let range = c * 8..((c + 1) * 8).min(k as usize);
        rows.push(("input".to_string(), xi[range.clone()].to_vec()));
        rows.push(("recon.".to_string(), ri[range].to_vec()));
    }
    plot::image_rows(
        &dir.join("reconstructions.png"),
        &format!("{}: test images and reconstructions", model.name),
        &rows,
        h as usize,
        w as usize,
        2,
    )
    .map_err(io(dir))?;
    if let Space::Simplex { dim } = model.space() {
        let vertices = net.decode(&Tensor::eye(dim, (Kind::Float, net.device)), false);
        image_grid(
            &dir.join("vertices.png"),
            &format!("{}: the {dim} simplex vertices, decoded", model.name),
            &vertices,
            model,
            8,
            2,
        )?;
    }
    interpolation(&dir.join("interpolation.png"), model, net, test, 0, 1, 10)?;
    Ok(())
}

/// The pictures of a 2-D point model: data beside decoded prior samples and reconstructions.
fn point_pictures(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    train: &Dataset,
) -> Result<(), EvalError> {
    let many = sample(net, 1000);
    let data = train.head(train.len().min(1000));
    let rec = net.decode(&net.encode(&data, false), false);
    let g = |name: &str, c: usize, t: &Tensor| Series {
        name: name.into(),
        color: PALETTE[c],
        points: points(t),
    };
    plot::scatter(
        &dir.join("samples.png"),
        &format!("{}: data and decoded prior samples", model.name),
        "x1",
        "x2",
        &[g("data", 7, &data), g("samples", 3, &many)],
    )
    .map_err(io(dir))?;
    plot::scatter(
        &dir.join("reconstructions.png"),
        &format!("{}: data and reconstructions", model.name),
        "x1",
        "x2",
        &[g("data", 7, &data), g("reconstructions", 0, &rec)],
    )
    .map_err(io(dir))?;
    Ok(())
}

/// latent.png: the test codes (projected to 2-D) coloured by label, one panel per named
/// component of a composite code (each in its own space's projection); returns the codes.
fn latent_picture(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    test: &Dataset,
) -> Result<Tensor, EvalError> {
    let k = test.len().min(5000);
    let codes = encode_all(net, &test.head(k));
    let labels: Vec<i64> = test
        .labels
        .as_ref()
        .map(|l| Vec::<i64>::try_from(l.narrow(0, 0, k).to_device(Device::Cpu)).unwrap_or_default())
        .unwrap_or_default();
    let png = dir.join("latent.png");
    let title = format!("{}: test codes by label", model.name);
    if !model.is_composite() {
        let (xy, xl, yl) = project_2d(&codes, model.space());
        let mut f = plot::scatter_frame(&title, xl, yl, &by_label(&points(&xy), &labels), 640);
        outline(&mut f, model.space());
        f.canvas.save(&png).map_err(io(dir))?;
        return Ok(codes);
    }
    let size = 400;
    let n = model.latents.len();
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    let width = (cols * size).max(16 + plot::Canvas::text_width(&title, 2).max(0) as usize);
    let mut canvas = plot::Canvas::new(width, rows * size + 30);
    canvas.text(8, 6, &title, plot::BLACK, 2);
    let mut offset = 0;
    for (i, l) in model.latents.iter().enumerate() {
        let d = l.space.dim();
        let (xy, xl, yl) = project_2d(&codes.narrow(1, offset, d), l.space);
        offset += d;
        let f = plot::scatter_frame(
            &format!("{} on {}", l.name, l.space),
            xl,
            yl,
            &by_label(&points(&xy), &labels),
            size,
        );
        canvas.blit(&f.canvas, (i % cols) * size, 30 + (i / cols) * size);
    }
    canvas.save(&png).map_err(io(&png))?;
    Ok(codes)
}

/// The boundary of a 2-D picture's space where it has one in view: the simplex's polygon with its
/// vertices labelled, the circle of a Poincare disc (radius 1 / sqrt(c)) or of a one-circle torus.
pub(crate) fn outline(f: &mut plot::Frame, space: Space) {
    if let Space::Simplex { dim } = space {
        // The simplex's vertices e1 .. ek where the projection puts them (see project_2d).
        let verts: Vec<(f64, f64)> = (0..dim)
            .map(|k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / dim as f64;
                (a.sin(), a.cos())
            })
            .collect();
        let mut ring = verts.clone();
        ring.extend(verts.first().copied());
        f.polyline_thin(&ring, plot::GREY);
        for (k, (x, y)) in verts.iter().enumerate() {
            f.label(*x, *y, &format!("e{}", k + 1));
        }
        return;
    }
    let r = match space {
        Space::Ball { dim: 2, c } => 1.0 / c.sqrt(),
        Space::Torus { k: 1 } => 1.0,
        _ => return,
    };
    let ring: Vec<(f64, f64)> = (0..=128)
        .map(|i| {
            let a = 2.0 * std::f64::consts::PI * i as f64 / 128.0;
            (r * a.cos(), r * a.sin())
        })
        .collect();
    f.polyline_thin(&ring, plot::GREY);
}

/// Points grouped by label (labels 0-9 in the palette's colours), or one group without labels.
fn by_label(pts: &[(f64, f64)], labels: &[i64]) -> Vec<Series> {
    if labels.is_empty() {
        return vec![Series {
            name: "codes".into(),
            color: PALETTE[0],
            points: pts.to_vec(),
        }];
    }
    let max_label = labels.iter().copied().max().unwrap_or(0).clamp(0, 9);
    (0..=max_label)
        .filter_map(|c| {
            let p: Vec<(f64, f64)> = pts
                .iter()
                .zip(labels)
                .filter(|(_, l)| **l == c)
                .map(|(p, _)| *p)
                .collect();
            (!p.is_empty()).then(|| Series {
                name: format!("label {c}"),
                color: PALETTE[c as usize % 10],
                points: p,
            })
        })
        .collect()
}

/// Loss per term over epochs, from `metrics.jsonl`.
pub fn loss_curves(dir: &Path) -> Result<(), EvalError> {
    let text = std::fs::read_to_string(dir.join(rundir::METRICS)).unwrap_or_default();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let series = |key: &str, c: usize, name: &str| Series {
        name: name.into(),
        color: PALETTE[c],
        points: rows
            .iter()
            .filter_map(|r| Some((r["epoch"].as_f64()?, r[key].as_f64()?)))
            .collect(),
    };
    let all = [
        series("recon", 0, "reconstruction"),
        series("penalty", 1, "gamma x penalty"),
        series("total", 3, "total"),
    ];
    let positive = all.iter().all(|s| s.points.iter().all(|p| p.1 > 0.0));
    plot::line_chart(
        &dir.join("loss_curves.png"),
        "training losses per epoch",
        "epoch",
        "mean loss per step",
        &all,
        positive,
    )
    .map_err(io(dir))
}

/// An interpolation strip between test examples `i` and `j`.
pub fn interpolation(
    path: &Path,
    model: &ir::Model,
    net: &Compiled,
    test: &Dataset,
    i: i64,
    j: i64,
    steps: i64,
) -> Result<(), EvalError> {
    let n = test.len();
    if i < 0 || j < 0 || i >= n || j >= n {
        return Err(EvalError::Io(format!(
            "--from {i} --to {j}: the test set has {n} examples (0 to {})",
            n - 1
        )));
    }
    if !model.data.is_image() {
        return Err(EvalError::Io(
            "interpolation strips are drawn for image data".into(),
        ));
    }
    let (h, w) = (model.data.shape[1], model.data.shape[2]);
    tch::no_grad(|| {
        let x = test.batch(&Tensor::from_slice(&[i, j]));
        let z = net.encode(&x, false);
        // Each component along its own space's path (a great circle for a sphere component).
        let mut off = 0;
        let mut parts = vec![];
        for l in &model.latents {
            let d = l.space.dim();
            let (a, b) = (z.get(0).narrow(0, off, d), z.get(1).narrow(0, off, d));
            parts.push(latent_path(&a, &b, l.space, steps));
            off += d;
        }
        let path_z = Tensor::cat(&parts, 1);
        let imgs = images(&net.decode(&path_z, false), h, w);
        let how = match model.space() {
            Space::Sphere { .. } => "great circle",
            Space::Torus { .. } => "shortest arc on each circle",
            Space::Ball { .. } => "hyperbolic geodesic",
            Space::Simplex { .. } => "straight line in the simplex",
            Space::Euclidean { .. } => "straight line",
        };
        let ends = images(&x, h, w);
        let rows = vec![
            ("decoded".to_string(), imgs),
            ("inputs".to_string(), vec![ends[0].clone(), ends[1].clone()]),
        ];
        plot::image_rows(
            path,
            &format!("{}: test {i} to {j}, {how}", model.name),
            &rows,
            h as usize,
            w as usize,
            2,
        )
    })
    .map_err(io(path))
}

/// For a 2-D latent: images decoded on a grid over the codes' range (or decoded points for data
/// in the plane).
fn manifold(
    path: &Path,
    model: &ir::Model,
    net: &Compiled,
    codes: &Tensor,
) -> Result<(), EvalError> {
    let k = 12;
    let q = |c: i64, p: f64| {
        codes
            .select(1, c)
            .to_kind(Kind::Float)
            .quantile_scalar(p, None, false, "linear")
            .double_value(&[])
    };
    let (x0, x1, y0, y1) = (q(0, 0.02), q(0, 0.98), q(1, 0.02), q(1, 0.98));
    let xs = Tensor::linspace(x0, x1, k, (Kind::Float, net.device));
    let ys = Tensor::linspace(y1, y0, k, (Kind::Float, net.device));
    let grid = Tensor::stack(
        &[
            xs.unsqueeze(0).expand([k, k], false),
            ys.unsqueeze(1).expand([k, k], false),
        ],
        2,
    )
    .reshape([-1, 2]);
    let out = net.decode(&grid, false);
    if model.data.is_image() {
        let title = format!(
            "{}: decoded latent grid [{x0:.1}, {x1:.1}] x [{y0:.1}, {y1:.1}]",
            model.name
        );
        image_grid(path, &title, &out, model, k as usize, 1)
    } else {
        let s = [Series {
            name: "decoded grid".into(),
            color: PALETTE[0],
            points: points(&out),
        }];
        plot::scatter(
            path,
            &format!("{}: latent grid, decoded", model.name),
            "x1",
            "x2",
            &s,
        )
        .map_err(io(path))
    }
}

/// Writes codes ([n, d]) and labels ([n], when given) to `out`: a `.npz` with the arrays
/// `codes` (float32) and `labels` (int64), or a `.npy` of the codes with the labels beside it
/// as `NAME.labels.npy`. Returns the files written.
pub fn write_codes(
    codes: &Tensor,
    labels: Option<&Tensor>,
    out: &Path,
) -> Result<Vec<std::path::PathBuf>, EvalError> {
    let codes = codes
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let shape: Vec<usize> = codes.size().iter().map(|&d| d as usize).collect();
    let c: Vec<f32> = Vec::<f32>::try_from(codes.flatten(0, -1)).unwrap_or_default();
    let l: Option<Vec<i64>> = labels.map(|t| {
        Vec::<i64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Int64)).unwrap_or_default()
    });
    match out.extension().and_then(|e| e.to_str()) {
        Some("npz") => {
            let bytes =
                crate::data::npy::encode_npz_codes(&shape, &c, l.as_deref()).map_err(io(out))?;
            write_atomic(out, &bytes).map_err(io(out))?;
            Ok(vec![out.to_path_buf()])
        }
        Some("npy") => {
            let bytes = crate::data::npy::encode_f32(&shape, &c).map_err(io(out))?;
            write_atomic(out, &bytes).map_err(io(out))?;
            let mut files = vec![out.to_path_buf()];
            if let Some(l) = l {
                let file = out.with_extension("labels.npy");
                let bytes = crate::data::npy::encode_i64(&[l.len()], &l).map_err(io(&file))?;
                write_atomic(&file, &bytes).map_err(io(&file))?;
                files.push(file);
            }
            Ok(files)
        }
        _ => Err(EvalError::Io(format!(
            "{}: write codes as .npz (codes and labels) or .npy",
            out.display()
        ))),
    }
}

/// Writes `n` decoded prior samples to `out`: `.npy` or `.npz` (uint8 images, or float32
/// points; in `.npz` under the key `arr_0`, images as [n, H, W, C]), `.png` (a grid, or a
/// scatter of points), or for images a folder of PNG files (a path without an extension).
pub fn write_samples(
    net: &Compiled,
    model: &ir::Model,
    n: i64,
    out: &Path,
) -> Result<(), EvalError> {
    let s = sample(net, n);
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "npy" | "npz" if model.data.is_image() => {
            let (c, h, w) = (
                model.data.shape[0],
                model.data.shape[1],
                model.data.shape[2],
            );
            // Colour as [n, H, W, C], the layout FID tools read; grey in .npy as [n, H, W],
            // in .npz (the evaluators' input) with its channel axis.
            let u8s = (s.clamp(0.0, 1.0) * 255.0)
                .round()
                .to_kind(Kind::Uint8)
                .reshape([n, c, h, w])
                .permute([0, 2, 3, 1])
                .contiguous()
                .to_device(Device::Cpu);
            let mut shape = vec![n as usize, h as usize, w as usize, c as usize];
            if c == 1 && ext == "npy" {
                shape.pop();
            }
            let v: Vec<u8> = Vec::<u8>::try_from(u8s.flatten(0, -1)).unwrap_or_default();
            let bytes = if ext == "npz" {
                crate::data::npy::encode_npz_u8(&shape, &v)
            } else {
                crate::data::npy::encode_u8(&shape, &v)
            };
            write_atomic(out, &bytes.map_err(io(out))?).map_err(io(out))
        }
        "npy" | "npz" => {
            let d = s.size()[1];
            let v: Vec<f32> =
                Vec::<f32>::try_from(s.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
            let shape = [n as usize, d as usize];
            let bytes = if ext == "npz" {
                crate::data::npy::encode_npz_f32(&shape, &v)
            } else {
                crate::data::npy::encode_f32(&shape, &v)
            };
            write_atomic(out, &bytes.map_err(io(out))?).map_err(io(out))
        }
        "png" if model.data.is_image() => {
            let cols = (n as f64).sqrt().ceil() as usize;
            image_grid(
                out,
                &format!("{}: {n} prior samples", model.name),
                &s,
                model,
                cols,
                2,
            )
        }
        "png" => plot::scatter(
            out,
            &format!("{}: {n} prior samples", model.name),
            "x1",
            "x2",
            &[Series {
                name: "samples".into(),
                color: PALETTE[3],
                points: points(&s),
            }],
        )
        .map_err(io(out)),
        "" if model.data.is_image() => write_png_folder(&s, out),
        _ => Err(EvalError::Io(format!(
            "{}: write samples as .npy, .npz, .png, or (images) a folder of PNG files (a path without an extension)",
            out.display()
        ))),
    }
}

/// Writes images `s` ([n, C, H, W] in [0, 1]) as `out/000000.png`, ... (8-bit grey or RGB), the
/// input external FID tools read; each file is written atomically.
fn write_png_folder(s: &Tensor, out: &Path) -> Result<(), EvalError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let size = s.size();
    let (n, c, h, w) = (size[0], size[1], size[2] as u32, size[3] as u32);
    let u8s = (s.clamp(0.0, 1.0) * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous()
        .to_device(Device::Cpu);
    let all: Vec<u8> = Vec::<u8>::try_from(u8s.flatten(0, -1)).unwrap_or_default();
    let per = (c as usize) * (h * w) as usize;
    for i in 0..n as usize {
        let px = all.get(i * per..(i + 1) * per).unwrap_or_default().to_vec();
        let img = if c == 1 {
            image::DynamicImage::from(image::GrayImage::from_raw(w, h, px).unwrap_or_default())
        } else {
            image::DynamicImage::from(image::RgbImage::from_raw(w, h, px).unwrap_or_default())
        };
        let mut bytes = std::io::Cursor::new(vec![]);
        img.write_to(&mut bytes, image::ImageFormat::Png)
            .map_err(|e| EvalError::Io(format!("{}: {e}", out.display())))?;
        let file = out.join(format!("{i:06}.png"));
        write_atomic(&file, bytes.get_ref()).map_err(io(&file))?;
    }
    Ok(())
}

/// Writes prior samples `z` ([n, d]) as DIR/NAME.npy (float32) and DIR/NAME.png: a scatter for
/// 2-D, the polygon projection for a simplex, pairwise scatters of the first (up to 4)
/// coordinates otherwise, or of the coordinates `dims` (numbered from 1, as the axes are
/// labelled; checked by the caller). Returns the files written.
pub fn write_prior_samples(
    z: &Tensor,
    space: Space,
    title: &str,
    dir: &Path,
    name: &str,
    dims: Option<&[i64]>,
) -> Result<Vec<std::path::PathBuf>, EvalError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let z = z.to_device(Device::Cpu).to_kind(Kind::Float);
    let (n, d) = (z.size()[0], z.size()[1]);
    let npy = dir.join(format!("{name}.npy"));
    let v: Vec<f32> = Vec::<f32>::try_from(z.flatten(0, -1)).unwrap_or_default();
    let bytes = crate::data::npy::encode_f32(&[n as usize, d as usize], &v).map_err(io(&npy))?;
    write_atomic(&npy, &bytes).map_err(io(&npy))?;
    let png = dir.join(format!("{name}.png"));
    let points = |x: &Tensor, y: &Tensor| -> Vec<(f64, f64)> {
        let x = Vec::<f64>::try_from(x.to_kind(Kind::Double)).unwrap_or_default();
        let y = Vec::<f64>::try_from(y.to_kind(Kind::Double)).unwrap_or_default();
        x.into_iter().zip(y).collect()
    };
    let series = |pts: Vec<(f64, f64)>| {
        vec![plot::Series {
            name: format!("{n} samples"),
            color: plot::PALETTE[0],
            points: pts,
        }]
    };
    let caption = format!("{title} on {space}");
    let torus2 = matches!(space, Space::Torus { k } if k >= 2);
    if dims.is_none() && (matches!(space, Space::Simplex { .. }) || d <= 2 || torus2) {
        let (xy, xl, yl) = if d == 1 {
            (
                Tensor::cat(
                    &[
                        z.shallow_clone(),
                        Tensor::zeros([n, 1], (Kind::Float, Device::Cpu)),
                    ],
                    1,
                ),
                "z1",
                "",
            )
        } else {
            let (xy, xl, yl) = project_2d(&z, space);
            (xy, xl, yl)
        };
        let pts = points(&xy.select(1, 0), &xy.select(1, 1));
        let mut f = plot::scatter_frame(&caption, xl, yl, &series(pts), 640);
        outline(&mut f, space);
        f.canvas.save(&png).map_err(io(&png))?;
    } else {
        // Pairwise scatters of the chosen coordinates (0-based here), or the first four.
        let chosen: Vec<i64> = match dims {
            Some(d) => d.iter().map(|i| i - 1).collect(),
            None => (0..d.min(4)).collect(),
        };
        let pairs: Vec<(i64, i64)> = (0..chosen.len())
            .flat_map(|a| (a + 1..chosen.len()).map(move |b| (a, b)))
            .map(|(a, b)| (chosen[a], chosen[b]))
            .collect();
        let size = 320;
        let cols = pairs.len().min(3);
        let rows = pairs.len().div_ceil(cols);
        // Wide enough for the caption when there are few panels.
        let title = 16 + plot::Canvas::text_width(&caption, 2).max(0) as usize;
        let mut canvas = plot::Canvas::new((cols * (size + 40)).max(title), rows * size + 24);
        canvas.text(8, 6, &caption, plot::BLACK, 2);
        for (idx, (i, j)) in pairs.iter().enumerate() {
            let pts = points(&z.select(1, *i), &z.select(1, *j));
            let f = plot::scatter_frame(
                "",
                &format!("z{}", i + 1),
                &format!("z{}", j + 1),
                &series(pts),
                size,
            );
            canvas.blit(
                &f.canvas,
                (idx % cols) * (size + 40),
                24 + (idx / cols) * size,
            );
        }
        canvas.save(&png).map_err(io(&png))?;
    }
    Ok(vec![npy, png])
}
