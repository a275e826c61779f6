"""The build hook; the project's metadata is in pyproject.toml.

Every build carries the pages' third-party files (GraphiQL's seven, Swagger UI's two for /docs)
under clusterql/static/vendor/, each verified against its pinned digest: copied from the source
tree where they are already there, fetched with npm otherwise. pip builds in an isolated
environment without clusterql's dependencies, so the code is loaded by file path: it needs only
the standard library, and clusterql/__init__.py is not run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.errors import SetupError

HERE = Path(__file__).resolve().parent


def _vendor_assets() -> ModuleType:
    name = "_clusterql_build_vendor_assets"
    spec = importlib.util.spec_from_file_location(name, HERE / "clusterql" / "vendor_assets.py")
    if spec is None or spec.loader is None:
        raise SetupError("clusterql/vendor_assets.py is missing from the source tree")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their class's module up there
    spec.loader.exec_module(module)
    return module


class BuildPyWithVendorFiles(build_py):
    """build_py, then the pages' verified files into the build (or, editable, the source tree)."""

    def run(self) -> None:
        super().run()
        assets = _vendor_assets()
        source = assets.VENDOR_DIR
        # An editable install serves the source tree: that is where the files must be.
        dest = source if self.editable_mode else Path(self.build_lib) / "clusterql/static/vendor"
        try:
            fetched = assets.bundle(dest, source)
        except assets.AssetError as exc:
            raise SetupError(
                f"The files of GraphiQL and /docs could not be bundled (they are not all in "
                f"clusterql/static/vendor/ of the source tree): {exc}"
            ) from None
        copied = len(assets.ASSETS) - len(fetched)
        print(
            f"GraphiQL and /docs: {len(assets.ASSETS)} files verified in {dest} "
            f"({copied} copied from the source tree, {len(fetched)} fetched with npm)"
        )


setup(cmdclass={"build_py": BuildPyWithVendorFiles})
