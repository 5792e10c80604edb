import subprocess
import sys


def test_core_imports_no_qt_and_no_heavy_modules():
    code = (
        "import sys, importlib, pkgutil, galaxy_explorer.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__):\n"
        "    importlib.import_module('galaxy_explorer.core.' + m.name)\n"
        "import galaxy_explorer.cli\n"
        "bad = [m for m in ('PySide6', 'pyqtgraph', 'torch', 'transformers', 'umap') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
