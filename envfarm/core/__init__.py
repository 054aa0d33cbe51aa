"""The kernel: what every other layer builds on.

The tool contract and the author toolkit (:mod:`~envfarm.core.tools`,
:mod:`~envfarm.core.toolkit`), the state codec (:mod:`~envfarm.core.state`),
scenarios and environment packages (:mod:`~envfarm.core.scenarios`,
:mod:`~envfarm.core.environments`), episodes (:mod:`~envfarm.core.episodes`),
procedural steps (:mod:`~envfarm.core.synth`) and the root exception
(:mod:`~envfarm.core.errors`). Nothing here imports another envfarm layer.
"""
