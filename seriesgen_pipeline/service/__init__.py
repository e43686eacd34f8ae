"""The generation service: snapshot -> plan -> apply, between the core and the database.

Dagster assets and the CLI both call these functions; neither holds logic of its own.
"""
