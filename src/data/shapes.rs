//! The procedural `shapes` set: one coloured shape on black per image (square, circle,
//! triangle, cross) with its scale, rotation, position and hue drawn from a seed. The drawn
//! factors are kept, so that tests and evaluation can ask how well the codes carry them.

use rayon::prelude::*;

use super::split::SplitMix;

/// The names of the shapes, in label order.
pub const SHAPES: [&str; 4] = ["square", "circle", "triangle", "cross"];
/// The generating factors, in column order of [`Drawn::factors`].
pub const FACTORS: [&str; 6] = ["shape", "scale", "rotation", "x", "y", "hue"];

/// `n` images of `size x size` RGB pixels in [0, 1] (row-major [n, 3, size, size]), their
/// shape labels and their factors ([n, 6], the shape as its label).
pub struct Drawn {
    pub pixels: Vec<f32>,
    pub labels: Vec<i64>,
    pub factors: Vec<f32>,
}

/// Draws `n` images from `seed`. Example i depends only on (seed, i), so the result does not
/// depend on the number of threads.
pub fn draw(n: usize, size: usize, seed: u64) -> Drawn {
    let per = 3 * size * size;
    let mut pixels = vec![0f32; n * per];
    let mut factors = vec![0f32; n * FACTORS.len()];
    pixels
        .par_chunks_mut(per)
        .zip(factors.par_chunks_mut(FACTORS.len()))
        .enumerate()
        .for_each(|(i, (img, f))| {
            let mut rng = SplitMix::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (i as u64));
            rng.next_u64();
            let shape = (rng.next_u64() % SHAPES.len() as u64) as usize;
            let scale = 0.5 + 0.5 * rng.uniform();
            let rotation = rng.uniform() * std::f64::consts::FRAC_PI_2;
            let (x, y) = (rng.uniform() - 0.5, rng.uniform() - 0.5);
            let hue = rng.uniform();
            f.copy_from_slice(&[
                shape as f32,
                scale as f32,
                rotation as f32,
                x as f32,
                y as f32,
                hue as f32,
            ]);
            render(img, size, shape, scale, rotation, (x, y), hue);
        });
    let labels = factors.chunks(FACTORS.len()).map(|f| f[0] as i64).collect();
    Drawn {
        pixels,
        labels,
        factors,
    }
}

/// Whether the point (u, v) of the shape's own frame (unit radius) is inside the shape.
fn inside(shape: usize, u: f64, v: f64) -> bool {
    match shape {
        0 => u.abs() <= 0.7 && v.abs() <= 0.7, // corners at 0.99: inside the unit circle
        1 => u * u + v * v <= 0.8,
        2 => {
            // An equilateral triangle with its centroid at the origin, circumradius 1.
            let s3 = 3f64.sqrt();
            v >= -0.5 && s3 * u + v <= 1.0 && -s3 * u + v <= 1.0
        }
        _ => (u.abs() <= 0.3 && v.abs() <= 0.9) || (v.abs() <= 0.3 && u.abs() <= 0.9),
    }
}

/// Draws one shape into a [3, size, size] image with 4 x 4 supersampling.
fn render(
    img: &mut [f32],
    size: usize,
    shape: usize,
    scale: f64,
    rotation: f64,
    (x, y): (f64, f64),
    hue: f64,
) {
    let s = size as f64;
    // The shape's radius in pixels, and its centre kept far enough from the border to fit.
    let radius = scale * s / 4.0;
    let room = s / 2.0 - radius;
    let (cx, cy) = (s / 2.0 + x * room, s / 2.0 + y * room);
    let (sin, cos) = rotation.sin_cos();
    let rgb = hue_to_rgb(hue);
    const SUB: usize = 4;
    for r in 0..size {
        for c in 0..size {
            let mut hits = 0;
            for a in 0..SUB {
                for b in 0..SUB {
                    let px = c as f64 + (b as f64 + 0.5) / SUB as f64 - cx;
                    let py = r as f64 + (a as f64 + 0.5) / SUB as f64 - cy;
                    let (u, v) = (
                        (cos * px + sin * py) / radius,
                        (-sin * px + cos * py) / radius,
                    );
                    hits += inside(shape, u, v) as usize;
                }
            }
            if hits > 0 {
                let cover = hits as f32 / (SUB * SUB) as f32;
                for (ch, value) in rgb.iter().enumerate() {
                    img[ch * size * size + r * size + c] = cover * value;
                }
            }
        }
    }
}

/// A fully saturated, full-value colour of hue `h` in [0, 1).
fn hue_to_rgb(h: f64) -> [f32; 3] {
    let k = |n: f64| {
        let k = (n + h * 6.0) % 6.0;
        (1.0 - (k.min(4.0 - k).clamp(0.0, 1.0))) as f32
    };
    [k(5.0), k(3.0), k(1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_is_deterministic_and_covers_every_shape() {
        let a = draw(64, 16, 7);
        let b = draw(64, 16, 7);
        assert_eq!(a.pixels, b.pixels);
        assert_ne!(draw(64, 16, 8).pixels, a.pixels);
        for s in 0..4 {
            assert!(a.labels.contains(&s), "shape {s} never drawn in 64");
        }
        assert!(a.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn a_shape_covers_about_its_area_and_has_its_colour() {
        // A circle (area 0.8 pi r^2) of scale 1 at 64 x 64: r = 16 pixels.
        let mut img = vec![0f32; 3 * 64 * 64];
        render(&mut img, 64, 1, 1.0, 0.0, (0.0, 0.0), 0.0);
        let red: f32 = img[..64 * 64].iter().sum();
        let expect = 0.8 * std::f32::consts::PI * 16.0 * 16.0;
        assert!((red - expect).abs() / expect < 0.01, "{red} vs {expect}");
        let green: f32 = img[64 * 64..2 * 64 * 64].iter().sum();
        assert!(green < 1e-3, "hue 0 is red");
        assert_eq!(hue_to_rgb(1.0 / 3.0), [0.0, 1.0, 0.0]);
        assert_eq!(hue_to_rgb(2.0 / 3.0), [0.0, 0.0, 1.0]);
    }

    #[test]
    fn every_shape_has_its_area() {
        // Radius 16 pixels at 64 x 64, no rotation, centred: areas in units of r^2.
        let s3 = 3f32.sqrt();
        for (shape, area) in [
            (0, 1.4f32 * 1.4),
            (1, 0.8 * std::f32::consts::PI),
            (2, 3.0 * s3 / 4.0),
            (3, 2.0 * 0.6 * 1.8 - 0.36),
        ] {
            let mut img = vec![0f32; 3 * 64 * 64];
            render(&mut img, 64, shape, 1.0, 0.3, (0.0, 0.0), 0.0);
            let got: f32 = img[..64 * 64].iter().sum::<f32>() / 256.0;
            assert!(
                (got - area).abs() / area < 0.02,
                "shape {shape}: {got} vs {area}"
            );
        }
    }

    #[test]
    fn the_shape_stays_inside_the_image() {
        // Scale 1 at the far corner: nothing is cut by the border, so the area is whole.
        let mut img = vec![0f32; 3 * 64 * 64];
        render(&mut img, 64, 0, 1.0, 0.0, (0.5, 0.5), 0.0);
        let red: f32 = img[..64 * 64].iter().sum();
        let expect = (1.4f32 * 16.0).powi(2);
        assert!((red - expect).abs() / expect < 0.02, "{red} vs {expect}");
    }
}
