"""Build hook for the compiled modules: :mod:`schemas._avrovm` (the codec's C path) and
:mod:`sinks.clickhouse._columns` (the ClickHouse sink's columns straight into Arrow buffers).

Everything else about the package is in ``pyproject.toml``. Both extensions are optional:
without Cython or a C compiler the package installs without them and the Python they stand in
for runs instead (same results, slower; ``lvlup bench codec`` prints which one ran).
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # no Cython: the pure-Python path only
    extensions = []
else:
    extensions = cythonize(
        [Extension("schemas._avrovm", ["schemas/_avrovm.pyx"], optional=True),
         Extension("sinks.clickhouse._columns", ["sinks/clickhouse/_columns.pyx"],
                   optional=True)],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )

setup(ext_modules=extensions)
