"""Packaging. The metadata and dependencies are in setup.cfg; this file only says which
packages there are, because two of them live outside ``vidrestore/``: the top-level folders
``engines/`` and ``training/`` install as ``vidrestore.engines`` and ``vidrestore.training``,
so no package named plain ``engines`` or ``training`` lands in anyone's site-packages."""

from setuptools import find_packages, setup

MAPPED = {"vidrestore.engines": "engines", "vidrestore.training": "training"}


def _packages() -> list[str]:
    packages = find_packages(include=["vidrestore", "vidrestore.*"])
    for name, folder in MAPPED.items():
        packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]
    return packages


setup(packages=_packages(), package_dir=dict(MAPPED))
