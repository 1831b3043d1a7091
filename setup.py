"""Build hook for the one compiled module, :mod:`schemas._avrovm` (the codec's C path).

Everything else about the package is in ``pyproject.toml``. The extension is optional: without
Cython or a C compiler the package installs without it and :mod:`schemas.fastcodec` uses its
generated Python (same contract, slower; ``lvlup bench codec`` prints which one ran).
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # no Cython: the pure-Python path only
    extensions = []
else:
    extensions = cythonize(
        [Extension("schemas._avrovm", ["schemas/_avrovm.pyx"], optional=True)],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )

setup(ext_modules=extensions)
