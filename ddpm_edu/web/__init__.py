"""The browser: what runs in the reader's page without a kernel.

* :mod:`~ddpm_edu.web.widgets` -- the schedule explorer and the live samplers (anywidget, and kernel-free HTML)
* :mod:`~ddpm_edu.web.export` -- the trained networks exported for the browser (ONNX, plain weights)
* :mod:`~ddpm_edu.web.sphinxext` -- the Sphinx hook that ships onnxruntime-web with the book
* ``js/`` -- the JavaScript that computes schedules and samples in the page
"""
