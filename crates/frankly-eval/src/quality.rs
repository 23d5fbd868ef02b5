//! How visible a perturbation is: PSNR and SSIM against the original.

use frankly_hash::RgbImage;

/// Side of the SSIM windows, in pixels.
const SSIM_WINDOW: u32 = 8;

/// Peak signal-to-noise ratio in dB over all RGB samples (`f64::INFINITY`
/// for identical images); `None` if the sizes differ or the images are empty.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> Option<f64> {
    if a.dimensions() != b.dimensions() || a.is_empty() {
        return None;
    }
    let sum: f64 = a.iter().zip(b.iter()).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum();
    let mse = sum / a.len() as f64;
    Some(if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() })
}

fn luma(image: &RgbImage) -> Vec<f64> {
    image.pixels().map(|p| 0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2])).collect()
}

/// Structural similarity (Wang et al. 2004) of the luma channels: the mean
/// of the SSIM index over non-overlapping 8x8 windows (uniform weights,
/// `C1 = (0.01 * 255)^2`, `C2 = (0.03 * 255)^2`). 1 for identical images;
/// `None` if the sizes differ or the images are smaller than one window.
pub fn ssim(a: &RgbImage, b: &RgbImage) -> Option<f64> {
    let (w, h) = a.dimensions();
    if b.dimensions() != (w, h) || w < SSIM_WINDOW || h < SSIM_WINDOW {
        return None;
    }
    let (la, lb) = (luma(a), luma(b));
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let n = f64::from(SSIM_WINDOW * SSIM_WINDOW);
    let mut total = 0.0;
    let mut windows = 0u64;
    for wy in (0..=h - SSIM_WINDOW).step_by(SSIM_WINDOW as usize) {
        for wx in (0..=w - SSIM_WINDOW).step_by(SSIM_WINDOW as usize) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in wy..wy + SSIM_WINDOW {
                for x in wx..wx + SSIM_WINDOW {
                    let i = (y * w + x) as usize;
                    let (p, q) = (la[i], lb[i]);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let (ma, mb) = (sa / n, sb / n);
            let va = (saa / n - ma * ma).max(0.0);
            let vb = (sbb / n - mb * mb).max(0.0);
            let cov = sab / n - ma * mb;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            windows += 1;
        }
    }
    Some(total / windows as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(f: impl Fn(u32, u32) -> u8) -> RgbImage {
        RgbImage::from_fn(32, 24, |x, y| {
            let v = f(x, y);
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn psnr_by_hand() {
        let a = img(|x, _| (x * 4) as u8);
        assert_eq!(psnr(&a, &a), Some(f64::INFINITY));
        // Every sample off by 5: MSE 25, PSNR = 10 log10(65025 / 25) = 34.15 dB.
        let b = img(|x, _| (x * 4 + 5) as u8);
        let p = psnr(&a, &b).unwrap();
        assert!((p - 34.151).abs() < 0.001, "{p}");
        assert_eq!(psnr(&a, &RgbImage::new(3, 3)), None);
    }

    #[test]
    fn ssim_is_one_for_identical_and_drops_with_noise() {
        let a = img(|x, y| ((x * 7 + y * 13) % 256) as u8);
        assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
        let checker = |amp: u8| {
            img(move |x, y| (((x * 7 + y * 13) % 256) as u8).saturating_add(if (x + y) % 2 == 0 { amp } else { 0 }))
        };
        let strong = ssim(&a, &checker(60)).unwrap();
        let weak = ssim(&a, &checker(6)).unwrap();
        assert!(strong < 0.9, "{strong}");
        assert!(weak > strong && weak < 1.0, "{weak} vs {strong}");
        assert_eq!(ssim(&RgbImage::new(4, 4), &RgbImage::new(4, 4)), None);
    }
}
