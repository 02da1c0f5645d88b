//! The data transforms of a model file: `salt` sets a fraction p of the pixels to 1; `canvas`
//! draws each image, whole, at a random position and scale on a larger canvas; both are the
//! same for every model (a fixed seed per split).

use sae_dsl::data::transform;
use sae_dsl::ir::Transform;
use tch::{Device, Kind, Tensor};

#[test]
fn salt_sets_a_fraction_p_of_the_pixels_to_one() {
    let x = Tensor::full([400, 1, 28, 28], 0.5, (Kind::Float, Device::Cpu));
    let y = transform(&x, &[Transform::Salt { p: 0.1 }], "train");
    let ones = y
        .eq(1.0)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    assert!((ones - 0.1).abs() < 0.005, "share of salted pixels {ones}");
    let kept = y
        .eq(0.5)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    assert!(
        (ones + kept - 1.0).abs() < 1e-12,
        "pixels are either kept or set to 1"
    );
    let again = transform(&x, &[Transform::Salt { p: 0.1 }], "train");
    assert!(y.equal(&again), "the same split gives the same noise");
    let test = transform(&x, &[Transform::Salt { p: 0.1 }], "test");
    assert!(!y.equal(&test), "the test split draws other noise");
}

#[test]
fn canvas_places_each_image_whole_at_its_own_position_and_scale() {
    let (n, h, size) = (64, 8, 32);
    let x = Tensor::ones([n, 1, h, h], (Kind::Float, Device::Cpu));
    let t = Transform::Canvas {
        size,
        shift: 0.3,
        zoom: 0.2,
    };
    let y = transform(&x, &[t], "train");
    assert_eq!(y.size(), [n, 1, size, size]);
    // An image of 64 ones keeps its mass up to the scale squared, exp(+-0.4)^2, and the
    // bilinear sampling at its border.
    let mass = y.sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Double);
    let (lo, hi) = (64.0 * (-0.8f64).exp() * 0.8, 64.0 * 0.8f64.exp() * 1.2);
    let (min, max) = (mass.min().double_value(&[]), mass.max().double_value(&[]));
    assert!(
        min > lo && max < hi,
        "masses from {min} to {max}, expected within ({lo}, {hi})"
    );
    // The centres of mass differ between images: positions are random.
    let cols = Tensor::arange(size, (Kind::Double, Device::Cpu));
    let cx = (y
        .to_kind(Kind::Double)
        .sum_dim_intlist(&[1i64, 2][..], false, Kind::Double)
        * &cols)
        .sum_dim_intlist(&[1i64][..], false, Kind::Double)
        / &mass;
    let spread = cx.std(true).double_value(&[]);
    assert!(
        spread > 1.0,
        "horizontal centres vary by {spread} pixels only"
    );
}
