"""The networks: eps_theta(x_t, t) as a U-Net for images and as an MLP for 2-D points. They import only torch.

* :mod:`~ddpm_edu.nets.unet` -- the DDPM U-Net (Ho et al. 2020, Appendix B), its presets and its anatomy table
* :mod:`~ddpm_edu.nets.mlp` -- a small MLP denoiser for the 2-D toys
"""
