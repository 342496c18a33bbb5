"""Maps the top-level component folders into the one `valuecorpus` namespace.

Sub-packages are discovered, so adding a module or a sub-package never needs an edit here.
"""

import os

from setuptools import setup

COMPONENTS = {
    "valuecorpus": "valuecorpus",
    "valuecorpus.schemas": "schemas",
    "valuecorpus.pipelines": "pipelines",
    "valuecorpus.annotation": "annotation",
    "valuecorpus.warehouse": "warehouse",
}
# Data files (taxonomies, prompt templates, recipes, labeling configs, card templates) ship in the wheel.
DATA_PATTERNS = ["*.json", "*.yaml", "*.xml", "*.md", "*.txt", "*.jinja", "*.j2", "*.html", "*.csv"]


def _discover() -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    package_data: dict[str, list[str]] = {}
    for name, folder in COMPONENTS.items():
        package_dir[name] = folder
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
            if "__init__.py" not in files:
                continue
            rel = os.path.relpath(root, folder)
            pkg = name if rel == "." else f"{name}.{rel.replace(os.sep, '.')}"
            packages.append(pkg)
            # data folders without __init__.py (e.g. prompts/dilemmas/) belong to the nearest package
            data = list(DATA_PATTERNS)
            for sub in dirs:
                if not os.path.exists(os.path.join(root, sub, "__init__.py")):
                    data += [f"{sub}/**/{pat}" for pat in DATA_PATTERNS]
            package_data[pkg] = data
    return packages, package_dir, package_data


packages, package_dir, package_data = _discover()
setup(packages=packages, package_dir=package_dir, package_data=package_data, include_package_data=False)
