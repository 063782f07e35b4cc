"""ddpm_edu."""
