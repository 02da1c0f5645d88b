//! Readable pictures without a plotting stack: an RGB canvas with an 8x8 bitmap font (no system
//! fonts needed), line charts and scatter plots with title, axes, ticks and legend, and image
//! grids with a caption. Every file is written atomically as PNG.

use std::path::Path;

use font8x8::legacy::BASIC_LEGACY;

pub type Rgb = [u8; 3];

pub const BLACK: Rgb = [0, 0, 0];
pub const GREY: Rgb = [200, 200, 200];
/// A qualitative palette (Tableau 10), for series and class labels.
pub const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// An RGB picture.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    px: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            px: vec![255; width * height * 3],
        }
    }

    /// Copies `other` into this canvas with its top-left corner at (x, y).
    pub fn blit(&mut self, other: &Canvas, x: usize, y: usize) {
        for j in 0..other.height {
            for i in 0..other.width {
                let k = (j * other.width + i) * 3;
                let c = [other.px[k], other.px[k + 1], other.px[k + 2]];
                self.set((x + i) as isize, (y + j) as isize, c);
            }
        }
    }

    /// Paints `c` over the pixel with opacity `alpha` (1: opaque).
    pub fn blend(&mut self, x: isize, y: isize, c: Rgb, alpha: f64) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            for (k, v) in c.iter().enumerate() {
                let old = f64::from(self.px[i + k]);
                self.px[i + k] = (old + (f64::from(*v) - old) * alpha).round() as u8;
            }
        }
    }

    pub fn set(&mut self, x: isize, y: isize, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn rect(&mut self, x0: isize, y0: isize, x1: isize, y1: isize, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    /// A straight line (Bresenham), `thick` pixels wide.
    pub fn line(&mut self, x0: isize, y0: isize, x1: isize, y1: isize, c: Rgb, thick: isize) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let mut guard = 0;
        loop {
            for t in 0..thick {
                self.set(x, y + t, c);
                self.set(x + t, y, c);
            }
            if (x == x1 && y == y1) || guard > 100_000 {
                break;
            }
            guard += 1;
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text in the 8x8 font scaled by `scale`; non-ASCII characters show as `?`.
    pub fn text(&mut self, x: isize, y: isize, s: &str, c: Rgb, scale: isize) {
        for (k, ch) in s.chars().enumerate() {
            let code = if (ch as u32) < 128 {
                ch as usize
            } else {
                '?' as usize
            };
            let glyph = BASIC_LEGACY[code];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        let (px, py) =
                            (x + (k as isize * 8 + col) * scale, y + row as isize * scale);
                        self.rect(px, py, px + scale - 1, py + scale - 1, c);
                    }
                }
            }
        }
    }

    pub fn text_width(s: &str, scale: isize) -> isize {
        s.chars().count() as isize * 8 * scale
    }

    /// Text rotated by 90 degrees (reading upwards), for a vertical axis label.
    pub fn text_up(&mut self, x: isize, y: isize, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let glyph = BASIC_LEGACY[if (ch as u32) < 128 {
                ch as usize
            } else {
                '?' as usize
            }];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        self.set(x + row as isize, y - (k as isize * 8 + col), c);
                    }
                }
            }
        }
    }

    /// An image (values in [0, 1]) scaled by `zoom`: grey (h x w, row-major), or colour when
    /// `values` holds three planes (3 x h x w, red, green, blue).
    pub fn image(&mut self, x: isize, y: isize, w: usize, h: usize, values: &[f32], zoom: usize) {
        let plane = w * h;
        let colour = values.len() == 3 * plane;
        let at = |i: usize| {
            (values.get(i).copied().unwrap_or(0.0).clamp(0.0, 1.0) * 255.0).round() as u8
        };
        for r in 0..h * zoom {
            for col in 0..w * zoom {
                let i = (r / zoom) * w + col / zoom;
                let c = if colour {
                    [at(i), at(plane + i), at(2 * plane + i)]
                } else {
                    let g = at(i);
                    [g, g, g]
                };
                self.set(x + col as isize, y + r as isize, c);
            }
        }
    }

    /// PNG bytes.
    pub fn encode(&self) -> std::io::Result<Vec<u8>> {
        let mut out = vec![];
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(std::io::Error::other)?;
            w.write_image_data(&self.px)
                .map_err(std::io::Error::other)?;
        }
        Ok(out)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::util::write_atomic(path, &self.encode()?)
    }
}

/// About `n` round tick values covering [lo, hi].
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(hi > lo) || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = vec![];
    let mut t = (lo / step).ceil() * step;
    while t <= hi + step * 1e-9 && v.len() < 50 {
        v.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    v
}

fn tick_label(t: f64) -> String {
    let a = t.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{t:.0e}")
    } else if t == t.trunc() {
        format!("{t:.0}")
    } else {
        let s = format!("{t:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A frame with title, axis labels, ticks; maps data coordinates to pixels.
pub struct Frame {
    pub canvas: Canvas,
    left: isize,
    right: isize,
    top: isize,
    bottom: isize,
    pub x: (f64, f64),
    pub y: (f64, f64),
    log_y: bool,
}

impl Frame {
    pub fn new(
        width: usize,
        height: usize,
        title: &str,
        xlabel: &str,
        ylabel: &str,
        x: (f64, f64),
        y: (f64, f64),
        log_y: bool,
    ) -> Frame {
        let mut canvas = Canvas::new(width, height);
        let (left, right, top, bottom) = (80, width as isize - 20, 40, height as isize - 50);
        // Long titles drop to the small font rather than run off the picture.
        let scale = if Canvas::text_width(title, 2) + 20 > width as isize {
            1
        } else {
            2
        };
        let tw = Canvas::text_width(title, scale);
        canvas.text(
            (width as isize - tw) / 2,
            10 + 4 * (2 - scale),
            title,
            BLACK,
            scale,
        );
        canvas.text(
            (left + right - Canvas::text_width(xlabel, 1)) / 2,
            height as isize - 14,
            xlabel,
            BLACK,
            1,
        );
        canvas.text_up(
            6,
            (top + bottom + Canvas::text_width(ylabel, 1)) / 2,
            ylabel,
            BLACK,
        );
        let pad = |(a, b): (f64, f64)| if b > a { (a, b) } else { (a - 1.0, a + 1.0) };
        let (x, y) = (pad(x), pad(y));
        let mut f = Frame {
            canvas,
            left,
            right,
            top,
            bottom,
            x,
            y,
            log_y,
        };
        f.axes();
        f
    }

    fn ty(&self, v: f64) -> f64 {
        if self.log_y {
            v.max(1e-300).log10()
        } else {
            v
        }
    }

    pub fn px(&self, x: f64, y: f64) -> (isize, isize) {
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let (y0, y1) = (self.ty(self.y.0), self.ty(self.y.1));
        let fy = (self.ty(y) - y0) / (y1 - y0);
        // Far outside the frame (or not a number) becomes a point just outside it, so that the
        // pixel arithmetic never overflows; callers clip to the frame.
        let far = |v: f64| if v.is_nan() { -1e6 } else { v.clamp(-1e6, 1e6) };
        (
            self.left + far((fx * (self.right - self.left) as f64).round()) as isize,
            self.bottom - far((fy * (self.bottom - self.top) as f64).round()) as isize,
        )
    }

    fn axes(&mut self) {
        let (l, r, t, b) = (self.left, self.right, self.top, self.bottom);
        for xt in ticks(self.x.0, self.x.1, 6) {
            let (px, _) = self.px(xt, self.y.0);
            self.canvas.line(px, t, px, b, [235, 235, 235], 1);
            self.canvas.line(px, b, px, b + 4, BLACK, 1);
            let s = tick_label(xt);
            self.canvas
                .text(px - Canvas::text_width(&s, 1) / 2, b + 8, &s, BLACK, 1);
        }
        let yt: Vec<f64> = if self.log_y {
            let (a, c) = (
                self.ty(self.y.0).floor() as i32,
                self.ty(self.y.1).ceil() as i32,
            );
            (a..=c)
                .map(|e| 10f64.powi(e))
                .filter(|v| *v >= self.y.0 * 0.999 && *v <= self.y.1 * 1.001)
                .collect()
        } else {
            ticks(self.y.0, self.y.1, 5)
        };
        for v in yt {
            let (_, py) = self.px(self.x.0, v);
            self.canvas.line(l, py, r, py, [235, 235, 235], 1);
            self.canvas.line(l - 4, py, l, py, BLACK, 1);
            let s = tick_label(v);
            self.canvas
                .text(l - 8 - Canvas::text_width(&s, 1), py - 4, &s, BLACK, 1);
        }
        self.canvas.line(l, t, l, b, BLACK, 1);
        self.canvas.line(l, b, r, b, BLACK, 1);
        self.canvas.line(r, t, r, b, BLACK, 1);
        self.canvas.line(l, t, r, t, BLACK, 1);
    }

    /// A legend box in the top-right corner.
    pub fn legend(&mut self, entries: &[(String, Rgb)]) {
        self.legend_avoiding(entries, &[]);
    }

    /// The legend in the corner of the frame that covers the fewest of `points`.
    pub fn legend_avoiding(&mut self, entries: &[(String, Rgb)], points: &[(f64, f64)]) {
        if entries.is_empty() {
            return;
        }
        let w = entries
            .iter()
            .map(|(s, _)| Canvas::text_width(s, 1))
            .max()
            .unwrap_or(0)
            + 30;
        let h = entries.len() as isize * 14 + 8;
        let corners = [
            (self.right - w - 8, self.top + 8),
            (self.left + 8, self.top + 8),
            (self.right - w - 8, self.bottom - h - 8),
            (self.left + 8, self.bottom - h - 8),
        ];
        let covered = |&(x0, y0): &(isize, isize)| {
            points
                .iter()
                .map(|&(x, y)| self.px(x, y))
                .filter(|&(px, py)| px >= x0 && px <= x0 + w && py >= y0 && py <= y0 + h)
                .count()
        };
        // The first corner (top right) unless another covers fewer points.
        let (x0, y0) = corners
            .iter()
            .min_by_key(|c| covered(c))
            .copied()
            .unwrap_or(corners[0]);
        self.canvas.rect(x0, y0, x0 + w, y0 + h, [255, 255, 255]);
        for (i, (name, c)) in entries.iter().enumerate() {
            let y = y0 + 6 + i as isize * 14;
            self.canvas.rect(x0 + 6, y + 1, x0 + 16, y + 7, *c);
            self.canvas.text(x0 + 22, y, name, BLACK, 1);
        }
        self.canvas.line(x0, y0, x0 + w, y0, GREY, 1);
        self.canvas.line(x0, y0 + h, x0 + w, y0 + h, GREY, 1);
        self.canvas.line(x0, y0, x0, y0 + h, GREY, 1);
        self.canvas.line(x0 + w, y0, x0 + w, y0 + h, GREY, 1);
    }

    pub fn polyline(&mut self, pts: &[(f64, f64)], c: Rgb) {
        for w in pts.windows(2) {
            let (a, b) = (self.px(w[0].0, w[0].1), self.px(w[1].0, w[1].1));
            self.canvas.line(a.0, a.1, b.0, b.1, c, 2);
        }
        if pts.len() == 1 {
            let a = self.px(pts[0].0, pts[0].1);
            self.canvas.rect(a.0 - 2, a.1 - 2, a.0 + 2, a.1 + 2, c);
        }
    }

    /// A one-pixel line through `pts`, drawn under nothing (an outline).
    pub fn polyline_thin(&mut self, pts: &[(f64, f64)], c: Rgb) {
        for w in pts.windows(2) {
            let (a, b) = (self.px(w[0].0, w[0].1), self.px(w[1].0, w[1].1));
            self.canvas.line(a.0, a.1, b.0, b.1, c, 1);
        }
    }

    /// `text` beside the data point (x, y), when that point is inside the frame.
    pub fn label(&mut self, x: f64, y: f64, text: &str) {
        let (px, py) = self.px(x, y);
        if px < self.left || px > self.right || py < self.top || py > self.bottom {
            return;
        }
        self.canvas.rect(px - 2, py - 2, px + 2, py + 2, BLACK);
        let w = Canvas::text_width(text, 1);
        // Left of points in the right half, right of the others, so labels stay in the frame.
        let tx = if px > (self.left + self.right) / 2 {
            px - w - 6
        } else {
            px + 6
        };
        self.canvas.text(tx, py - 4, text, BLACK, 1);
    }

    pub fn dot(&mut self, x: f64, y: f64, c: Rgb, r: isize) {
        self.dot_alpha(x, y, c, r, 1.0);
    }

    /// A dot painted with opacity `alpha`, so that dense clouds show their density.
    pub fn dot_alpha(&mut self, x: f64, y: f64, c: Rgb, r: isize, alpha: f64) {
        if !(x.is_finite() && y.is_finite()) {
            return; // not drawn; the caller reports how many
        }
        let (px, py) = self.px(x, y);
        if px < self.left || px > self.right || py < self.top || py > self.bottom {
            return;
        }
        for yy in py - r..=py + r {
            for xx in px - r..=px + r {
                self.canvas.blend(xx, yy, c, alpha);
            }
        }
    }
}

/// The axis range of a scatter: all finite values, or with more than 200 the 0.5% to 99.5%
/// quantiles (a few far points would otherwise squeeze the cloud into a corner).
fn robust_range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = vals.filter(|v| v.is_finite()).collect();
    if v.len() <= 200 {
        return range(v.into_iter());
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.005), at(0.995))
}

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (0.0, 1.0)
    } else {
        (lo, hi)
    }
}

/// A named series of points.
pub struct Series {
    pub name: String,
    pub color: Rgb,
    pub points: Vec<(f64, f64)>,
}

/// Line chart of series sharing the axes; `log_y` when values span decades (all must be > 0).
pub fn line_chart(
    path: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[Series],
    log_y: bool,
) -> std::io::Result<()> {
    let xs = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let mut ys = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let log_y = log_y && ys.0 > 0.0;
    if !log_y {
        let pad = (ys.1 - ys.0).abs().max(1e-9) * 0.05;
        ys = (ys.0 - pad, ys.1 + pad);
    } else {
        ys = (ys.0 / 1.2, ys.1 * 1.2);
    }
    let mut f = Frame::new(720, 440, title, xlabel, ylabel, xs, ys, log_y);
    for s in series {
        f.polyline(&s.points, s.color);
    }
    f.legend(
        &series
            .iter()
            .map(|s| (s.name.clone(), s.color))
            .collect::<Vec<_>>(),
    );
    f.canvas.save(path)
}

/// Scatter plot of labelled groups of points on equal scales.
pub fn scatter(
    path: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    groups: &[Series],
) -> std::io::Result<()> {
    let f = scatter_frame(title, xlabel, ylabel, groups, 640);
    f.canvas.save(path)
}

/// The frame of [`scatter`], for callers that draw more on it.
pub fn scatter_frame(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    groups: &[Series],
    size: usize,
) -> Frame {
    let xs = robust_range(groups.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let ys = robust_range(groups.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let half = ((xs.1 - xs.0).max(ys.1 - ys.0) / 2.0 * 1.08).max(1e-6);
    let (cx, cy) = ((xs.0 + xs.1) / 2.0, (ys.0 + ys.1) / 2.0);
    let (xr, yr) = ((cx - half, cx + half), (cy - half, cy + half));
    let inside = |&(x, y): &(f64, f64)| x >= xr.0 && x <= xr.1 && y >= yr.0 && y <= yr.1;
    let mut f = Frame::new(
        size + 40,
        size,
        title,
        xlabel,
        ylabel,
        (cx - half, cx + half),
        (cy - half, cy + half),
        false,
    );
    // Dense clouds drawn translucent, so that their density shows.
    let n: usize = groups.iter().map(|g| g.points.len()).sum();
    let alpha = (2000.0 / n.max(1) as f64).clamp(0.2, 1.0);
    for g in groups {
        for &(x, y) in &g.points {
            f.dot_alpha(x, y, g.color, 1, alpha);
        }
    }
    // Points beyond the axes are counted in the legend, never dropped unsaid.
    let entries: Vec<(String, Rgb)> = groups
        .iter()
        .map(|s| {
            let out = s
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite() && !inside(p))
                .count();
            let name = if out > 0 {
                format!("{} ({out} beyond the axes)", s.name)
            } else {
                s.name.clone()
            };
            (name, s.color)
        })
        .collect();
    let all: Vec<(f64, f64)> = groups
        .iter()
        .flat_map(|g| g.points.iter().copied())
        .collect();
    f.legend_avoiding(&entries, &all);
    f
}

/// Images in rows (values in [0, 1], each h x w grey or 3 x h x w colour), without labels: the pictures
/// training sends to TensorBoard.
pub fn image_grid(rows: &[Vec<Vec<f32>>], h: usize, w: usize, zoom: usize) -> Canvas {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (cw, ch) = (w * zoom + 2, h * zoom + 2);
    let mut c = Canvas::new(cols * cw, rows.len() * ch);
    for (ri, imgs) in rows.iter().enumerate() {
        for (ci, img) in imgs.iter().enumerate() {
            c.image(
                (ci * cw + 1) as isize,
                (ri * ch + 1) as isize,
                w,
                h,
                img,
                zoom,
            );
        }
    }
    c
}

/// Images (grey or colour, as [`Canvas::image`]) in rows with a title above and an optional label left of each row.
pub fn image_rows(
    path: &Path,
    title: &str,
    rows: &[(String, Vec<Vec<f32>>)],
    h: usize,
    w: usize,
    zoom: usize,
) -> std::io::Result<()> {
    let label_w = rows
        .iter()
        .map(|(l, _)| Canvas::text_width(l, 1))
        .max()
        .unwrap_or(0)
        .max(0) as usize
        + if rows.iter().any(|(l, _)| !l.is_empty()) {
            12
        } else {
            4
        };
    let cols = rows.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    let (cw, ch) = (w * zoom + 2, h * zoom + 2);
    let width = (label_w + cols * cw + 8).max(Canvas::text_width(title, 2) as usize + 20);
    let height = 40 + rows.len() * ch + 8;
    let mut c = Canvas::new(width, height);
    c.text(
        ((width as isize) - Canvas::text_width(title, 2)) / 2,
        10,
        title,
        BLACK,
        2,
    );
    for (ri, (label, imgs)) in rows.iter().enumerate() {
        let y = 40 + (ri * ch) as isize;
        c.text(4, y + (ch as isize) / 2 - 4, label, BLACK, 1);
        for (ci, img) in imgs.iter().enumerate() {
            let x = (label_w + ci * cw) as isize;
            c.rect(x, y, x + cw as isize - 1, y + ch as isize - 1, [96, 96, 96]);
            c.image(x + 1, y + 1, w, h, img, zoom);
        }
    }
    c.save(path)
}

/// A viridis-like colour for t in [0, 1].
pub fn colormap(t: f64) -> Rgb {
    const STOPS: [Rgb; 5] = [
        [68, 1, 84],
        [59, 82, 139],
        [33, 145, 140],
        [94, 201, 98],
        [253, 231, 37],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    [0, 1, 2].map(|k| (a[k] as f64 + (b[k] as f64 - a[k] as f64) * f).round() as u8)
}

/// A heat map of `values` (row-major, `n` x `n`, first row at the top = largest y) over the
/// given ranges, with curves drawn on top and the value range in the legend.
#[allow(clippy::too_many_arguments)]
// A parameter list like the frame's: a heat map is drawn on one.
pub fn heatmap(
    path: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    x: (f64, f64),
    y: (f64, f64),
    n: usize,
    values: &[f64],
    value_name: &str,
    curves: &[Series],
) -> std::io::Result<()> {
    let mut f = Frame::new(680, 640, title, xlabel, ylabel, x, y, false);
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = range(finite.iter().copied());
    for r in 0..n {
        for c in 0..n {
            let v = values.get(r * n + c).copied().unwrap_or(f64::NAN);
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            let (x0, x1) = (
                x.0 + (x.1 - x.0) * c as f64 / n as f64,
                x.0 + (x.1 - x.0) * (c + 1) as f64 / n as f64,
            );
            let (y1, y0) = (
                y.1 - (y.1 - y.0) * r as f64 / n as f64,
                y.1 - (y.1 - y.0) * (r + 1) as f64 / n as f64,
            );
            let (a, b) = (f.px(x0, y1), f.px(x1, y0));
            f.canvas.rect(a.0, a.1, b.0 - 1, b.1 - 1, colormap(t));
        }
    }
    for s in curves {
        f.polyline(&s.points, s.color);
        for p in [s.points.first(), s.points.last()].into_iter().flatten() {
            f.dot(p.0, p.1, s.color, 3);
        }
    }
    let mut legend: Vec<(String, Rgb)> = curves.iter().map(|s| (s.name.clone(), s.color)).collect();
    legend.push((format!("{value_name} {lo:.2}"), colormap(0.0)));
    legend.push((format!("{value_name} {hi:.2}"), colormap(1.0)));
    f.legend(&legend);
    f.canvas.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few far points do not set the axes of a large cloud; a small set keeps all its points.
    #[test]
    fn scatter_axes_follow_the_bulk_of_a_large_cloud() {
        let mut v: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0).collect();
        v.extend([1e3, -1e3, 5e2]);
        let (lo, hi) = robust_range(v.iter().copied());
        assert!(lo >= 0.0 && hi <= 1.0, "{lo} {hi}");
        assert!(lo < 0.01 && hi > 0.99, "{lo} {hi}");
        assert_eq!(robust_range([0.0, 5.0, 1e3].into_iter()), (0.0, 1e3));
    }

    /// Translucent dots mix with the background, and opaque ones replace it.
    #[test]
    fn blending_mixes_colours() {
        let mut c = Canvas::new(2, 1);
        c.blend(0, 0, [0, 0, 0], 0.5);
        c.blend(1, 0, [0, 0, 0], 1.0);
        assert_eq!(&c.px[..6], &[128, 128, 128, 0, 0, 0]);
    }
}
