"""The workbench: paths, notebook parameters, the papermill runner, artifacts, claims and the scoreboard,
the import graph behind each DVC stage's dependencies, and ``cliplab new``.

Core imports nothing else of cliplab, so every layer above it (substrate, papers, the CLI) may use it.
"""
