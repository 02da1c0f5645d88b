//! PNG pictures: image grids and 2-D scatter plots, written atomically.

use std::path::Path;

use tch::{Kind, Tensor};

/// Encodes an 8-bit RGB or grey image as PNG bytes.
fn encode(width: u32, height: u32, channels: usize, pixels: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = vec![];
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(if channels == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(std::io::Error::other)?;
        w.write_image_data(pixels).map_err(std::io::Error::other)?;
    }
    Ok(out)
}

/// Writes images `[N, 1, H, W]` with values in [0, 1] as a grid with `cols` columns, scaled up by
/// `zoom` and separated by a 1-pixel grey border.
pub fn write_grid(path: &Path, images: &Tensor, cols: i64, zoom: usize) -> std::io::Result<()> {
    let imgs = images
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .clamp(0.0, 1.0);
    let size = imgs.size();
    let (n, h, w) = (size[0], size[size.len() - 2], size[size.len() - 1]);
    let imgs = imgs.reshape([n, h, w]);
    let cols = cols.clamp(1, n.max(1));
    let rows = (n + cols - 1) / cols;
    let (hz, wz) = (h as usize * zoom, w as usize * zoom);
    let (width, height) = (cols as usize * (wz + 1) + 1, rows as usize * (hz + 1) + 1);
    let mut px = vec![96u8; width * height];
    let data: Vec<f32> =
        Vec::<f32>::try_from(imgs.flatten(0, -1)).map_err(std::io::Error::other)?;
    for i in 0..n as usize {
        let (r, c) = (i / cols as usize, i % cols as usize);
        let (oy, ox) = (r * (hz + 1) + 1, c * (wz + 1) + 1);
        for y in 0..hz {
            for x in 0..wz {
                let v = data[i * (h * w) as usize + (y / zoom) * w as usize + x / zoom];
                px[(oy + y) * width + ox + x] = (v * 255.0).round() as u8;
            }
        }
    }
    crate::util::write_atomic(path, &encode(width as u32, height as u32, 1, &px)?)
}

/// A set of points drawn in one colour.
pub struct Series<'a> {
    pub points: &'a Tensor,
    pub color: [u8; 3],
}

/// Writes a square scatter plot of 2-D point sets (first two coordinates), with axes through the
/// origin and a frame; all series share the same scale.
pub fn write_scatter(path: &Path, series: &[Series], size: usize) -> std::io::Result<()> {
    let mut pts: Vec<Vec<(f32, f32)>> = vec![];
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for s in series {
        let p = s
            .points
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .narrow(1, 0, 2)
            .contiguous();
        let v: Vec<f32> = Vec::<f32>::try_from(p.flatten(0, -1)).map_err(std::io::Error::other)?;
        let xy: Vec<(f32, f32)> = v
            .chunks(2)
            .map(|c| (c[0], c[1]))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        for &(x, y) in &xy {
            lo = lo.min(x).min(y);
            hi = hi.max(x).max(y);
        }
        pts.push(xy);
    }
    if !lo.is_finite() {
        (lo, hi) = (-1.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let (lo, hi) = (lo - pad, hi + pad);
    let mut px = vec![255u8; size * size * 3];
    let to_px = |v: f32| (((v - lo) / (hi - lo)) * (size as f32 - 1.0)).round() as isize;
    let put = |x: isize, y: isize, c: [u8; 3], px: &mut Vec<u8>| {
        if x >= 0 && y >= 0 && (x as usize) < size && (y as usize) < size {
            let i = ((size - 1 - y as usize) * size + x as usize) * 3;
            px[i..i + 3].copy_from_slice(&c);
        }
    };
    let (ox, oy) = (to_px(0.0), to_px(0.0));
    for t in 0..size as isize {
        put(ox, t, [200, 200, 200], &mut px);
        put(t, oy, [200, 200, 200], &mut px);
        for e in [0, size as isize - 1] {
            put(e, t, [0, 0, 0], &mut px);
            put(t, e, [0, 0, 0], &mut px);
        }
    }
    for (s, xy) in series.iter().zip(&pts) {
        for &(x, y) in xy {
            let (cx, cy) = (to_px(x), to_px(y));
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)] {
                put(cx + dx, cy + dy, s.color, &mut px);
            }
        }
    }
    crate::util::write_atomic(path, &encode(size as u32, size as u32, 3, &px)?)
}
