"""The plugin module named by the ``camtrap.plugins`` entry point.

Keep this module light: it is imported whenever any camtrap command builds its plugin
manager (even ``ct-io plugins``), so heavy imports belong inside the factories.
"""

from __future__ import annotations

from ct_io import hookimpl
from ct_io.hookspecs import Register


@hookimpl
def ct_register_data_sources(register: Register) -> None:
    from camtrap_example.folders import SpeciesFolders, SpeciesFoldersOptions

    register(
        "species-folders",
        SpeciesFolders,
        options=SpeciesFoldersOptions,
        description="Images sorted into one folder per species (optionally per location)",
    )


@hookimpl
def ct_register_losses(register: Register) -> None:
    from camtrap_example.poly1 import Poly1Options, make_poly1_loss

    register(
        "poly1",
        make_poly1_loss,
        options=Poly1Options,
        description="Poly-1 cross-entropy (Leng et al. 2022)",
    )
