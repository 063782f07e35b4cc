"""The browser: what runs in the reader's page without a kernel.

* :mod:`~ddpm_edu.web.explorer` -- the schedule explorer (chapters 3-5)
* :mod:`~ddpm_edu.web.live` -- the live samplers (chapters 6 and 8)
* :mod:`~ddpm_edu.web.views` -- what both share: an anywidget view, kernel-free HTML, and the JS bundled for them
* :mod:`~ddpm_edu.web.ort` -- onnxruntime-web, found or installed, for the digits sampler
* :mod:`~ddpm_edu.web.export` -- the trained networks exported for the browser (ONNX, plain weights)
* :mod:`~ddpm_edu.web.sphinxext` -- the Sphinx hook that ships onnxruntime-web with the book
* ``js/`` -- the JavaScript that computes schedules and samples in the page, one module per file, and
  ``messages.json``, the wording of the problems both Python and the page report
"""
