//! Volume scales.
//!
//! PipeWire stores linear amplitudes in `channelVolumes`; wpctl, pavucontrol
//! and status bars show the cubic scale (`linear = v^3`). Everything the user
//! sees or types is cubic; everything sent to PipeWire is linear.

/// Linear channel volumes; up to 8 channels are stored inline.
pub type Channels = smallvec::SmallVec<[f32; 8]>;

/// Cubic (user-facing) value of a linear amplitude.
pub fn cubic_from_linear(linear: f32) -> f32 {
    linear.max(0.0).cbrt()
}

/// Linear amplitude of a cubic (user-facing) value.
pub fn linear_from_cubic(cubic: f32) -> f32 {
    let c = cubic.max(0.0);
    c * c * c
}

/// The user-facing volume of a set of channel volumes: the cubic value of
/// their mean. An empty set reads as 0.
pub fn displayed(channels: &[f32]) -> f32 {
    if channels.is_empty() {
        return 0.0;
    }
    let mean = channels.iter().sum::<f32>() / channels.len() as f32;
    cubic_from_linear(mean)
}

/// New channel volumes that show as `cubic`, scaling every channel together so
/// the balance between channels is kept. Channels that are all silent (or
/// unknown) are all set to the same level.
pub fn scaled_channels(current: &[f32], cubic: f32, default_channels: usize) -> Vec<f32> {
    let target = linear_from_cubic(cubic);
    let n = if current.is_empty() { default_channels.max(1) } else { current.len() };
    let mean = if current.is_empty() { 0.0 } else { current.iter().sum::<f32>() / n as f32 };
    if mean <= f32::EPSILON {
        return vec![target; n];
    }
    let factor = target / mean;
    current.iter().map(|c| c * factor).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wpctl_half_is_one_eighth_linear() {
        assert_eq!(linear_from_cubic(0.5), 0.125);
        assert!((cubic_from_linear(0.125) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn displayed_is_cubic_of_mean() {
        assert!((displayed(&[0.125, 0.125]) - 0.5).abs() < 1e-6);
        assert_eq!(displayed(&[]), 0.0);
        assert_eq!(displayed(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn scaling_keeps_balance() {
        let out = scaled_channels(&[0.2, 0.4], 0.5, 2);
        // mean becomes 0.125, ratio 1:2 kept
        assert!((out[0] - 0.125 * 2.0 / 3.0).abs() < 1e-6);
        assert!((out[1] - 0.125 * 4.0 / 3.0).abs() < 1e-6);
        assert!((displayed(&out) - 0.5).abs() < 1e-5);
    }

    #[test]
    fn balanced_channels_get_the_same_value() {
        assert_eq!(scaled_channels(&[1.0, 1.0], 0.5, 2), vec![0.125, 0.125]);
        assert_eq!(scaled_channels(&[0.0, 0.0], 0.5, 2), vec![0.125, 0.125]);
        assert_eq!(scaled_channels(&[], 1.0, 2), vec![1.0, 1.0]);
        assert_eq!(scaled_channels(&[0.3, 0.3], 0.0, 2), vec![0.0, 0.0]);
    }
}
